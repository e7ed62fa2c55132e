import { randomBytes } from 'node:crypto';
import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { BangerError, toBangerError } from '../model/errors.js';
import type { ProgressEvent, ProgressSink } from '../model/progress.js';
import type { Operations } from './operations.js';
import {
  isMethodName,
  type MethodName,
  type Methods,
  methods,
  type Result,
  VERSION_EXEMPT,
} from './protocol.js';
import { errorToWire, jsonRpcCode, lineSplitter } from './wire.js';
import { inputSchema, requestSchema, type WireRequest } from './wire-schemas.js';

/**
 * What a handler gets besides its params: its op id, a cancel signal, a progress sink, a logger, and the
 * call's byte streams (a command's output to the client, the client's stdin) for methods that run one.
 */
export interface CallContext {
  opId: string;
  signal: AbortSignal;
  progress: ProgressSink;
  log: Logger;
  output: (stream: 'stdout' | 'stderr', data: Buffer) => void;
  stdin: Readable;
}

export type Handler<M extends MethodName> = (
  params: z.output<Methods[M]['params']>,
  ctx: CallContext,
) => Promise<Result<M>>;

export type Handlers = { [M in MethodName]: Handler<M> };

export interface RpcServerOptions {
  socketPath: string;
  handlers: Handlers;
  version: string;
  log: Logger;
  operations: Operations;
}

export interface RpcServer {
  close(): Promise<void>;
}

const newOpId = () => randomBytes(6).toString('hex');

function describeZodIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((i) =>
      i.code === 'unrecognized_keys'
        ? `unknown field ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`
        : `field ${JSON.stringify(i.path.join('.') || '(params)')}: ${i.message}`,
    )
    .join('; ');
}

/**
 * Binds the daemon socket, refusing to start while another daemon answers on it and replacing a stale
 * socket file (left by a crash) otherwise.
 */
async function listenExclusive(server: Server, socketPath: string): Promise<void> {
  const tryListen = () =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        server.off('listening', onListening);
        reject(err);
      };
      const onListening = () => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(socketPath);
    });
  try {
    await tryListen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    await refuseIfDaemonAnswers(socketPath);
    unlinkSync(socketPath);
    await tryListen();
  }
  chmodSync(socketPath, 0o600);
}

/**
 * Refuses to go on while another daemon answers on `socketPath`. The daemon asks this before its start-up
 * sweeps too: a second daemon must not remove the staging or fresh image directories the first is writing.
 */
export async function refuseIfDaemonAnswers(socketPath: string): Promise<void> {
  if (await socketAnswers(socketPath)) {
    throw new BangerError('already_exists', `another bangerd is already running on ${socketPath}`, {
      hint: 'banger daemon stop',
    });
  }
}

function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(socketPath);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Starts the JSON-RPC server: validate, call, encode. Nothing else lives here. */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const { handlers, version, log, operations } = options;
  const connections = new Set<Socket>();

  const server = createServer((socket) => {
    connections.add(socket);
    // Calls in flight on this connection by request id: a client may run many at once (the SDK does).
    const controllers = new Map<string | number, AbortController>();
    const stdins = new Map<string | number, PassThrough>();
    const send = (message: unknown) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
    };
    const feed = lineSplitter(
      (line) => void handleLine(line),
      () => {
        send(errorMessage(null, new BangerError('bad_request', 'request line too long')));
        socket.destroy();
      },
    );

    async function handleLine(line: string): Promise<void> {
      let request: WireRequest;
      try {
        const message: unknown = JSON.parse(line);
        const input = inputSchema.safeParse(message);
        if (input.success) {
          const stdin = stdins.get(input.data.params.id);
          if (input.data.params.data) stdin?.write(Buffer.from(input.data.params.data, 'base64'));
          if (input.data.params.eof) stdin?.end();
          const size = input.data.params.resize;
          if (size) stdin?.emit('resize', size.rows, size.cols);
          if (input.data.params.signal) stdin?.emit('signal', input.data.params.signal);
          if (input.data.params.cancel) {
            controllers
              .get(input.data.params.id)
              ?.abort(new BangerError('cancelled', 'client cancelled the call'));
          }
          return;
        }
        request = requestSchema.parse(message);
      } catch {
        send(errorMessage(null, new BangerError('bad_request', 'malformed JSON-RPC request')));
        return;
      }
      if (controllers.has(request.id)) {
        send(errorMessage(request.id, new BangerError('bad_request', 'a call with this id is running')));
        return;
      }
      const opId = newOpId();
      const opLog = log.child({ op_id: opId, method: request.method });
      const controller = new AbortController();
      controllers.set(request.id, controller);
      const stdin = new PassThrough();
      stdins.set(request.id, stdin);
      operations.begin(opId, request.method, controller);
      try {
        const result = await dispatch(request, opId, controller.signal, opLog, stdin);
        send({ jsonrpc: '2.0', id: request.id, result });
      } catch (err) {
        const error = toBangerError(err);
        error.opId = opId;
        opLog.warn({ code: error.code, err: error.message, cause: causeText(error) }, 'call failed');
        send(errorMessage(request.id, error));
      } finally {
        controllers.delete(request.id);
        stdins.delete(request.id);
        stdin.end();
        operations.end(opId);
      }
    }

    async function dispatch(
      request: WireRequest,
      opId: string,
      signal: AbortSignal,
      opLog: Logger,
      stdin: Readable,
    ) {
      if (!isMethodName(request.method)) {
        throw new BangerError('unknown_method', `unknown method ${JSON.stringify(request.method)}`);
      }
      if (!VERSION_EXEMPT.has(request.method) && request.meta?.version !== version) {
        throw new BangerError(
          'bad_version',
          `client version ${request.meta?.version ?? 'unknown'} does not match daemon version ${version}`,
          { hint: 'banger daemon stop; the next banger command starts a matching daemon' },
        );
      }
      const spec = methods[request.method];
      const parsed = spec.params.safeParse(request.params ?? {});
      if (!parsed.success) throw new BangerError('bad_request', describeZodIssues(parsed.error.issues));
      const progress = (event: ProgressEvent) => {
        if (event.kind === 'stage') operations.stage(opId, event.stage);
        send({ jsonrpc: '2.0', method: 'progress', params: { id: request.id, event } });
      };
      opLog.debug('call');
      const handler = handlers[request.method] as Handler<MethodName>;
      const output = (stream: 'stdout' | 'stderr', data: Buffer) =>
        send({
          jsonrpc: '2.0',
          method: 'output',
          params: { id: request.id, stream, data: data.toString('base64') },
        });
      return handler(parsed.data as never, { opId, signal, progress, log: opLog, output, stdin });
    }

    socket.on('data', feed);
    socket.on('error', () => {});
    socket.on('close', () => {
      connections.delete(socket);
      // A client that goes away cancels what it asked for.
      for (const c of controllers.values()) c.abort(new BangerError('cancelled', 'client disconnected'));
    });
  });

  await listenExclusive(server, options.socketPath);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of connections) s.end();
      }),
  };
}

function errorMessage(id: WireRequest['id'] | null, error: BangerError) {
  return {
    jsonrpc: '2.0',
    id,
    error: { code: jsonRpcCode(error.code), ...errorToWire(error) },
  };
}

function causeText(error: Error): string | undefined {
  const cause = error.cause;
  return cause instanceof Error ? cause.message : cause === undefined ? undefined : String(cause);
}
