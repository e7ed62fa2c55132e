import { type BangerError, formatSize, operationFailed } from '../model/index.js';

/**
 * How much of an answer a caller takes from the guest, and how long it waits for all of it. The guest is
 * untrusted: without both, endless output fills the daemon's memory and a slow drip holds a call forever.
 */
export interface GuestReadLimit {
  /** File bytes, or a command's stdout and stderr together. */
  maxBytes: number;
  /** Until the whole answer is in (a command's exit, a file's end). */
  timeoutMs: number;
  /** What is read, for the error: a guest path, "the work disk mount". */
  what: string;
}

/** For a file read, `what` defaults to the guest path. */
export type FileReadLimit = Omit<GuestReadLimit, 'what'> & { what?: string };

/** A single-reply request (health, ports …) waits this long before the connection is dropped. */
export const REPLY_TIMEOUT_MS = 30_000;

export interface ReadBudget {
  /** Counts n more bytes; false (after reporting the breach) once they exceed the limit. */
  add(n: number): boolean;
  /** The answer is complete or failed: stops the clock. */
  done(): void;
}

export function tooMuch(limit: Pick<GuestReadLimit, 'maxBytes' | 'what'>): BangerError {
  return operationFailed(`the guest sent more than ${formatSize(limit.maxBytes)} for ${limit.what}`, {
    hint: 'the guest agent misbehaves (its connection was dropped); restart the VM if it persists',
  });
}

export function tooSlow(what: string, timeoutMs: number): BangerError {
  return operationFailed(`the guest did not finish sending ${what} within ${timeoutMs / 1000} s`, {
    hint: 'the guest agent is stuck or misbehaves (its connection was dropped); restart the VM if it persists',
  });
}

/** Tracks one answer against its limit; `breach` is called once, with the error to fail it with. */
export function readBudget(limit: GuestReadLimit, breach: (err: BangerError) => void): ReadBudget {
  let total = 0;
  let over = false;
  const timer = setTimeout(() => {
    over = true;
    breach(tooSlow(limit.what, limit.timeoutMs));
  }, limit.timeoutMs);
  return {
    add(n) {
      if (over) return false;
      total += n;
      if (total <= limit.maxBytes) return true;
      over = true;
      clearTimeout(timer);
      breach(tooMuch(limit));
      return false;
    },
    done: () => clearTimeout(timer),
  };
}
