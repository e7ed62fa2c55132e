import { connect } from 'node:net';
import { BangerError, operationFailed } from '../../model/errors.js';
import {
  PRIV_MAX_FRAME_BYTES,
  PRIV_PROTOCOL_VERSION,
  type PrivOpName,
  privResponseSchema,
  privResults,
} from './protocol.js';
import type { PrivOps } from './types.js';

export interface RemotePrivOpsOptions {
  /** bangerd-root's socket. */
  socketPath: string;
  /** How long one operation may take before it is abandoned (dmsetup retries, `ip` under load). */
  timeoutMs?: number;
}

/**
 * PrivOps carried out by the root helper (`bangerd-root`) over its socket: one connection per operation,
 * one request line and one response line. The helper validates everything again; this side checks only
 * what comes back, since a helper of another build could answer in another shape.
 */
export function createRemotePrivOps({ socketPath, timeoutMs = 120_000 }: RemotePrivOpsOptions): PrivOps {
  const call = <K extends PrivOpName>(op: K, args: object) =>
    request(socketPath, op, args, timeoutMs) as Promise<unknown>;
  const none = async (op: PrivOpName, args: object) => {
    await call(op, args);
  };
  return {
    linkMark: () => call('linkMark', {}) as Promise<string>,
    ensureBridge: (req) => none('ensureBridge', req),
    deleteBridge: (req) => call('deleteBridge', req) as ReturnType<PrivOps['deleteBridge']>,
    createTap: (req) => none('createTap', req),
    deleteTap: (req) => call('deleteTap', req) as ReturnType<PrivOps['deleteTap']>,
    addNat: (req) => none('addNat', req),
    removeNat: (req) => none('removeNat', req),
    setIpForward: (req) => none('setIpForward', req),
    attachLoop: (req) => call('attachLoop', req) as ReturnType<PrivOps['attachLoop']>,
    detachLoop: (req) => none('detachLoop', req),
    createDmSnapshot: (req) => call('createDmSnapshot', req) as ReturnType<PrivOps['createDmSnapshot']>,
    removeDm: (req) => none('removeDm', req),
    // Only the request's own fields: a caller may hand over a richer record (a process identity with its
    // `kind`), and the helper's strict schema refuses any key it does not know.
    signalProcess: ({ pid, startTime, arg, exe, signal }) =>
      call('signalProcess', {
        pid,
        startTime,
        arg,
        ...(exe === undefined ? {} : { exe }),
        signal,
      }) as ReturnType<PrivOps['signalProcess']>,
    routeResolver: (req) => none('routeResolver', req),
  };
}

/** What a running helper says about itself: its banger version, protocol and the uid it serves. */
export async function helloPrivHelper(
  socketPath: string,
  timeoutMs = 5000,
): Promise<{ version: string; protocol: number; ownerUid: number }> {
  return (await request(socketPath, 'hello', {}, timeoutMs)) as {
    version: string;
    protocol: number;
    ownerUid: number;
  };
}

/** Sends one request and returns its checked result, or throws the helper's error as a BangerError. */
function request(socketPath: string, op: PrivOpName, args: object, timeoutMs: number): Promise<unknown> {
  // JSON drops undefined fields, which is what the helper's optional fields expect.
  const line = `${JSON.stringify({ v: PRIV_PROTOCOL_VERSION, op, args })}\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: unknown) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () =>
      fail(operationFailed(`bangerd-root did not answer ${op} within ${timeoutMs} ms`)),
    );
    socket.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        operationFailed(`cannot reach bangerd-root at ${socketPath}: ${err.code ?? err.message}`, {
          cause: err,
          hint: 'start it (banger system run, or systemctl start bangerd-root) and check priv_helper_socket',
        }),
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > PRIV_MAX_FRAME_BYTES) fail(operationFailed(`bangerd-root's answer to ${op} is too large`));
      else chunks.push(chunk);
    });
    socket.on('end', () => {
      try {
        resolve(parseResponse(op, Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(err);
      }
    });
    socket.write(line);
  });
}

function parseResponse(op: PrivOpName, text: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw operationFailed(`bangerd-root closed the connection without an answer to ${op}`);
  }
  const res = privResponseSchema.safeParse(json);
  if (!res.success || res.data.v !== PRIV_PROTOCOL_VERSION) {
    throw operationFailed(`bangerd-root answered ${op} in an unknown form`, {
      hint: 'restart the daemon and bangerd-root from the same banger install',
    });
  }
  if (!res.data.ok) {
    const { code, message, hint } = res.data.error;
    throw new BangerError(code, `bangerd-root: ${message}`, hint ? { hint } : {});
  }
  const result = privResults[op].safeParse(res.data.result);
  if (!result.success) throw operationFailed(`bangerd-root's answer to ${op} does not fit its schema`);
  return result.data ?? undefined;
}
