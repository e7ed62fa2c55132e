import { createConnection, type Socket } from 'node:net';
import { BangerError } from '../model/errors.js';
import {
  type CallOptions,
  ConnectionLostError,
  DaemonUnreachableError,
  onResponse,
  parseResponse,
  type RpcClient,
  responseId,
} from './client.js';
import { checkResult } from './result-check.js';
import { lineSplitter, type WireResponse } from './wire.js';

/** A client that keeps one connection for many calls; `close()` ends it. */
export interface SharedRpcClient extends RpcClient {
  close(): void;
}

interface Pending {
  onMessage(m: WireResponse): void;
  /** The connection failed: before it was made (nobody listens) or during the call. */
  lost(connected: boolean, detail: string, cause?: unknown): void;
}

interface Connection {
  socket: Socket;
  connected: boolean;
  pending: Map<number, Pending>;
}

function cancelled(method: string, signal: AbortSignal | undefined): BangerError {
  const reason: unknown = signal?.reason;
  return reason instanceof BangerError ? reason : new BangerError('cancelled', `${method} cancelled`);
}

/**
 * The SDK's client: one unix-socket connection to the daemon carries every call (ids tell them apart), so a
 * call does not pay for a connect and the daemon's per-connection set-up. Aborting or timing out a call sends
 * a `cancel` for it (the daemon cancels it as for a client that went away) and keeps the connection. A
 * connection that fails fails the calls on it with the errors the one-call client gives
 * (DaemonUnreachableError before it was made, ConnectionLostError after) and the next call connects again.
 * The socket is unref'd while no call is in flight, so an idle client never keeps a script alive.
 */
export function createSharedRpcClient(socketPath: string, version: string): SharedRpcClient {
  let current: Connection | undefined;
  let nextId = 1;
  let closed = false;

  const idle = (c: Connection) => {
    if (c.pending.size === 0) c.socket.unref();
  };

  function connect(): Connection {
    const socket = createConnection(socketPath);
    const c: Connection = { socket, connected: false, pending: new Map() };
    const fail = (detail: string, cause?: unknown) => {
      if (current === c) current = undefined;
      const calls = [...c.pending.values()];
      c.pending.clear();
      socket.destroy();
      for (const p of calls) p.lost(c.connected, detail, cause);
    };
    socket.on('connect', () => {
      c.connected = true;
    });
    socket.on('error', (err) => fail(err.message, err));
    // The daemon ended the connection (stopping): no call may start on it any more.
    socket.on('end', () => fail('no answer'));
    socket.on('close', () => fail('no answer'));
    socket.on(
      'data',
      lineSplitter(
        (line) => {
          const m = parseResponse(line);
          const id = m && responseId(m);
          if (m && typeof id === 'number') c.pending.get(id)?.onMessage(m);
        },
        () => fail('response line too long'),
      ),
    );
    return c;
  }

  return {
    close() {
      closed = true;
      current?.socket.destroy();
      current = undefined;
    },
    call(method, params, options: CallOptions = {}) {
      return new Promise((resolve, reject) => {
        if (closed) {
          reject(new BangerError('operation_failed', 'this banger client was closed'));
          return;
        }
        if (options.signal?.aborted) {
          reject(cancelled(method, options.signal)); // never sent: nothing to cancel in the daemon
          return;
        }
        current ??= connect();
        const c = current;
        const id = nextId++;
        const write = (message: object) => {
          if (!c.socket.destroyed) c.socket.write(`${JSON.stringify(message)}\n`);
        };
        const input = (p: object) =>
          !settled && write({ jsonrpc: '2.0', method: 'input', params: { id, ...p } });
        let settled = false;
        const finish = (fn: () => void, cancel = false) => {
          if (settled) return;
          if (cancel) input({ cancel: true });
          settled = true;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          options.stdin?.off('data', onStdin);
          options.stdin?.off('end', onStdinEnd);
          options.controls?.off('resize', onResize);
          options.controls?.off('signal', onSignal);
          c.pending.delete(id);
          idle(c);
          fn();
        };
        const timer = options.timeoutMs
          ? setTimeout(
              () => finish(() => reject(new BangerError('operation_failed', `${method} timed out`)), true),
              options.timeoutMs,
            )
          : undefined;
        const onAbort = () => finish(() => reject(cancelled(method, options.signal)), true);
        const onStdin = (chunk: Buffer | string) => input({ data: Buffer.from(chunk).toString('base64') });
        const onStdinEnd = () => input({ eof: true });
        const onResize = (rows: number, cols: number) => input({ resize: { rows, cols } });
        const onSignal = (signal: string) => input({ signal });

        c.pending.set(id, {
          onMessage: (m) => onResponse(m, method, options, finish, resolve, reject, checkResult),
          lost: (connected, detail, cause) =>
            finish(() =>
              reject(
                connected
                  ? new ConnectionLostError(method, detail)
                  : new DaemonUnreachableError(socketPath, cause),
              ),
            ),
        });
        c.socket.ref();
        // Written before the socket connects, Node queues it.
        write({ jsonrpc: '2.0', id, method, params, meta: { version } });
        options.signal?.addEventListener('abort', onAbort, { once: true });
        options.stdin?.on('data', onStdin);
        options.stdin?.on('end', onStdinEnd);
        options.controls?.on('resize', onResize);
        options.controls?.on('signal', onSignal);
      });
    },
  };
}
