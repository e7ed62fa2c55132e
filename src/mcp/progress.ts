import type { ProgressEvent } from '../model/progress.js';

/** What the MCP SDK hands a tool call: the request's `_meta` and the way back to the client. */
export interface ProgressExtra {
  _meta?: { progressToken?: string | number };
  sendNotification(notification: {
    method: 'notifications/progress';
    params: { progressToken: string | number; progress: number; total?: number; message?: string };
  }): Promise<void>;
}

/** Byte counts come often; a client needs a few a second, and every stage change. */
const BYTES_INTERVAL_MS = 250;

const describe = (e: ProgressEvent): string => {
  if (e.kind === 'stage') return e.message ? `${e.stage}: ${e.message}` : e.stage;
  if (e.kind === 'log') return e.message;
  const of = e.total === undefined ? '' : ` of ${e.total}`;
  return `${e.stage}${e.item ? ` ${e.item}` : ''}: ${e.done}${of} bytes`;
};

/**
 * A progress sink that relays the daemon's events as MCP progress notifications, or undefined when the
 * client sent no progressToken (it did not ask). MCP wants `progress` to grow with every notification, while
 * our byte counts restart per stage and item: it counts notifications, and the message says what moved.
 * Sending is best-effort: a client gone away is the call's cancellation to handle, not the relay's.
 */
export function progressRelay(extra: ProgressExtra): ((event: ProgressEvent) => void) | undefined {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  let sent = 0;
  let lastBytesAt = 0;
  let lastStage: string | undefined;
  return (event) => {
    const now = Date.now();
    if (event.kind === 'bytes') {
      const sameStage = event.stage === lastStage;
      const done = event.total !== undefined && event.done >= event.total;
      if (sameStage && !done && now - lastBytesAt < BYTES_INTERVAL_MS) return;
      lastBytesAt = now;
    }
    if (event.kind !== 'log') lastStage = event.stage;
    sent += 1;
    extra
      .sendNotification({
        method: 'notifications/progress',
        params: { progressToken: token, progress: sent, message: describe(event) },
      })
      .catch(() => {});
  };
}
