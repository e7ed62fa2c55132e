import { createConnection } from 'node:net';
import { BangerError } from '../model/errors.js';
import type { ProgressEvent } from '../model/progress.js';
// Types only from protocol.js: its values build zod schemas, which a CLI call does not load (issue 20).
import type { MethodName, Params, Result } from './protocol.js';
import {
  errorFromWire,
  type ForwardedSignal,
  type InputParams,
  lineSplitter,
  parseResponse,
  type WireResponse,
} from './wire.js';

export { parseResponse } from './wire.js';

/**
 * Checks a method's result against its schema (result-check.ts), turning what it cannot read into an error.
 * A client without one takes the daemon's results as they come, typed by the method table.
 */
export type ResultCheck = <M extends MethodName>(method: M, raw: unknown) => Result<M>;

export interface CallOptions {
  onProgress?: (event: ProgressEvent) => void;
  /** A command's output, for methods that run one (`vm.exec`, `vm.run`). */
  onOutput?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
  /** Forwarded to the call's stdin, chunk by chunk, then its end. */
  stdin?: NodeJS.ReadableStream;
  /**
   * Forwarded to the daemon: 'resize' (rows, cols) when the terminal of a tty call changes size, and
   * 'signal' (a ForwardedSignal) for the call's command.
   */
  controls?: NodeJS.EventEmitter;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface RpcClient {
  call<M extends MethodName>(method: M, params: Params<M>, options?: CallOptions): Promise<Result<M>>;
}

/** Thrown when nothing listens on the socket: the CLI's cue to start the daemon. */
export class DaemonUnreachableError extends BangerError {
  constructor(socketPath: string, cause: unknown) {
    super('operation_failed', `bangerd is not answering on ${socketPath}`, {
      cause,
      hint: 'banger daemon status',
    });
  }
}

/** The daemon went away mid-call (it was stopping, or it crashed). */
export class ConnectionLostError extends BangerError {
  constructor(method: string, detail: string) {
    super('operation_failed', `bangerd closed the connection during ${method} (${detail})`, {
      hint: 'banger daemon status; the daemon log says why',
    });
  }
}

/**
 * The daemon refused the call because its version differs (before running it, so the call had no effect);
 * still a `bad_version` BangerError, told apart from a result this client cannot read.
 */
export class DaemonVersionError extends BangerError {}

/**
 * One connection per call: closing it (Ctrl-C, abort) cancels the operation in the daemon. The CLI passes
 * no `check`: the daemon answering is its own, of the same version (checked per call), and the CLI's calls
 * stay free of zod.
 */
export function createRpcClient(socketPath: string, version: string, check?: ResultCheck): RpcClient {
  return {
    call(method, params, options = {}) {
      return new Promise((resolve, reject) => {
        const socket = createConnection(socketPath);
        let connected = false;
        let settled = false;
        const finish = (fn: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          socket.destroy();
          fn();
        };
        const timer = options.timeoutMs
          ? setTimeout(
              () => finish(() => reject(new BangerError('operation_failed', `${method} timed out`))),
              options.timeoutMs,
            )
          : undefined;
        const onAbort = () => {
          const reason: unknown = options.signal?.reason;
          finish(() =>
            reject(
              reason instanceof BangerError ? reason : new BangerError('cancelled', `${method} cancelled`),
            ),
          );
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });

        socket.on('connect', () => {
          connected = true;
          socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method, params, meta: { version } })}\n`);
          const input = (params: Omit<InputParams, 'id'>) =>
            !settled &&
            socket.write(
              `${JSON.stringify({ jsonrpc: '2.0', method: 'input', params: { id: 1, ...params } })}\n`,
            );
          options.stdin?.on('data', (chunk: Buffer | string) =>
            input({ data: Buffer.from(chunk).toString('base64') }),
          );
          options.stdin?.on('end', () => input({ eof: true }));
          options.controls?.on('resize', (rows: number, cols: number) => input({ resize: { rows, cols } }));
          options.controls?.on('signal', (signal: ForwardedSignal) => input({ signal }));
        });
        socket.on('error', (err) => {
          finish(() =>
            reject(
              connected
                ? new ConnectionLostError(method, err.message)
                : new DaemonUnreachableError(socketPath, err),
            ),
          );
        });
        socket.on('close', () => {
          finish(() => reject(new ConnectionLostError(method, 'no answer')));
        });
        socket.on(
          'data',
          lineSplitter(
            (line) => {
              const message = parseResponse(line);
              if (message) onResponse(message, method, options, finish, resolve, reject, check);
            },
            () => finish(() => reject(new BangerError('operation_failed', 'response line too long'))),
          ),
        );
      });
    },
  };
}

/** Where a message's call id is: a notification carries it in params. */
export const responseId = (m: WireResponse): string | number | null => ('method' in m ? m.params.id : m.id);

/**
 * One message for a call: output and progress go to its callbacks; an error or a result settles it
 * (`finish` runs once, after the call's own cleanup).
 */
export function onResponse<M extends MethodName>(
  m: WireResponse,
  method: M,
  options: CallOptions,
  finish: (fn: () => void) => void,
  resolve: (result: Result<M>) => void,
  reject: (err: unknown) => void,
  check?: ResultCheck,
): void {
  if ('method' in m && m.method === 'output') {
    options.onOutput?.(m.params.stream, Buffer.from(m.params.data, 'base64'));
  } else if ('method' in m) {
    options.onProgress?.(m.params.event as ProgressEvent);
  } else if ('error' in m) {
    const wire = errorFromWire(m.error);
    const error =
      wire.code === 'bad_version'
        ? new DaemonVersionError('bad_version', wire.message, { hint: wire.hint })
        : wire;
    finish(() => reject(error));
  } else {
    let result: Result<M>;
    try {
      result = check ? check(method, m.result) : (m.result as Result<M>);
    } catch (err) {
      finish(() => reject(err));
      return;
    }
    finish(() => resolve(result));
  }
}
