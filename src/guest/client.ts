import { randomInt } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { z } from 'zod';
import { BangerError, ERROR_CODES, type ErrorCode, operationFailed } from '../model/index.js';
import {
  type FileReadLimit,
  type GuestReadLimit,
  REPLY_TIMEOUT_MS,
  type ReadBudget,
  readBudget,
  tooMuch,
  tooSlow,
} from './limits.js';
import { DATA_CHUNK, encodeFrame, encodeJson, type Frame, FrameDecoder, FrameType } from './protocol.js';
import {
  type AgentHealth,
  type DirEntry,
  dirListSchema,
  type ExecResult,
  errorReplySchema,
  execStartedSchema,
  exitSchema,
  fileInfoSchema,
  healthSchema,
  type ListeningPort,
  okSchema,
  portsSchema,
} from './replies.js';
import { connectErrorSchema, GuestConnectError, GuestTcpStream, type TcpChannel } from './tcp-stream.js';
import type { AgentStream } from './transport.js';

/** A TCP port of the guest itself: `address` defaults to 127.0.0.1 and must be one of the guest's own. */
export interface TcpTarget {
  port: number;
  address?: string;
}

export interface ExecRequest {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** NAME, UID or UID:GID inside the guest; default root. */
  user?: string;
  /** Run on a PTY of this size (stdout carries both streams then). */
  tty?: { rows: number; cols: number };
}

export interface ExecIo {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /**
   * For output the caller collects (rather than streams on with flow control): past it, wait() fails and
   * the connection is dropped, which kills the command.
   */
  limit?: GuestReadLimit;
}

export interface ExecHandle {
  resize(rows: number, cols: number): void;
  /** Sends a signal (`SIGTERM`, `TERM`, ...) to the command's process group. */
  signal(name: string): void;
  /** Resolves once the command exited and all its output was written to io. */
  wait(): Promise<ExecResult>;
}

export interface WriteFileOptions {
  mode?: number;
  uid?: number;
  gid?: number;
}

interface StreamHandler {
  onFrame(frame: Frame): void;
  onClose(err: BangerError): void;
}

/** Turns an agent error reply into a BangerError with the agent's code when it is one of ours. */
function agentError(payload: unknown, what: string): BangerError {
  const parsed = errorReplySchema.safeParse(payload);
  if (!parsed.success) return operationFailed(`agent sent a malformed reply to ${what}`);
  const code = (ERROR_CODES as readonly string[]).includes(parsed.data.error.code)
    ? (parsed.data.error.code as ErrorCode)
    : 'operation_failed';
  return new BangerError(code, `guest agent: ${parsed.data.error.message}`);
}

function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** One connection to a guest agent; many requests and exec streams share it. */
export class AgentClient {
  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<number, StreamHandler>();
  // A random start, so a stale frame from an earlier connection cannot match a live stream.
  private nextId = randomInt(1, 0x3fffffff);
  private closedError: BangerError | undefined;

  private readonly stream: AgentStream;
  /** Writers waiting for the connection to drain (one listener for all: many streams may wait at once). */
  private drainWaiters: (() => void)[] = [];

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const fn of waiters) fn();
  }

  constructor(stream: AgentStream) {
    this.stream = stream;
    stream.on('drain', () => this.wakeDrainWaiters());
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err) => this.fail(operationFailed(`agent connection failed: ${err.message}`)));
    stream.on('close', () => this.fail(operationFailed('agent connection closed')));
    stream.on('end', () => this.fail(operationFailed('agent connection closed')));
    // The Firecracker handshake leaves the socket explicitly paused; a 'data' listener alone would not resume it.
    stream.resume();
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err instanceof BangerError ? err : operationFailed(String(err)));
      this.stream.destroy();
      return;
    }
    for (const frame of frames) {
      if (frame.stream === 0) {
        this.fail(agentError(parseJson(frame.payload), 'the connection'));
        this.stream.destroy();
        return;
      }
      this.streams.get(frame.stream)?.onFrame(frame);
    }
  }

  private fail(err: BangerError): void {
    if (this.closedError) return;
    this.closedError = err;
    const handlers = [...this.streams.values()];
    this.streams.clear();
    for (const h of handlers) h.onClose(err);
    this.wakeDrainWaiters();
  }

  /** Ends a connection whose guest broke a limit: every stream on it fails with err, its commands die. */
  private drop(err: BangerError): void {
    this.fail(err);
    this.stream.destroy();
  }

  /** Sinks and TCP streams whose reader is full: while any is, the connection is not read (flow control). */
  private readonly holders = new Set<object>();

  private hold(key: object): void {
    if (this.holders.has(key)) return;
    this.holders.add(key);
    this.stream.pause();
  }

  private release(key: object): void {
    if (!this.holders.delete(key)) return;
    if (this.holders.size === 0) this.stream.resume();
  }

  private holdUntilDrained(w: Writable): void {
    if (this.holders.has(w)) return;
    this.hold(w);
    const release = () => {
      w.off('drain', release);
      w.off('close', release);
      this.release(w);
    };
    w.on('drain', release);
    w.on('close', release);
  }

  private open(request: object, handler: StreamHandler): number {
    if (this.closedError) throw this.closedError;
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
    this.streams.set(id, handler);
    this.send(encodeJson(FrameType.open, id, request));
    return id;
  }

  private send(frame: Buffer): boolean {
    if (this.closedError) return false;
    return this.stream.write(frame);
  }

  /** A request answered by one reply frame (at most MAX_PAYLOAD, by the decoder), within a bounded time. */
  private request<T extends z.ZodType>(request: { op: string }, schema: T): Promise<z.infer<T>> {
    return new Promise((resolve, reject) => {
      const id = this.open(request, {
        onFrame: (frame) => {
          if (frame.type !== FrameType.reply) return;
          clearTimeout(timer);
          this.streams.delete(id);
          const body = parseJson(frame.payload);
          const ok = schema.safeParse(body);
          if (ok.success) resolve(ok.data);
          else reject(agentError(body, request.op));
        },
        onClose: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      const timer = setTimeout(
        () => this.drop(tooSlow(`its ${request.op} reply`, REPLY_TIMEOUT_MS)),
        REPLY_TIMEOUT_MS,
      );
    });
  }

  async health(): Promise<AgentHealth> {
    const { ok: _ok, ...health } = await this.request({ op: 'health' }, healthSchema);
    return health;
  }

  async ports(): Promise<ListeningPort[]> {
    return (await this.request({ op: 'ports' }, portsSchema)).ports;
  }

  /**
   * A guest directory's entries (symlinks not followed), in the agent's order; `truncated` when they did not
   * all fit one reply frame (about 1 MiB of JSON).
   */
  async listDir(path: string): Promise<{ entries: DirEntry[]; truncated: boolean }> {
    const request = { op: 'list_dir', path };
    const { entries, truncated } = await this.request(request, dirListSchema);
    return { entries, truncated };
  }

  exec(req: ExecRequest, io: ExecIo): ExecHandle {
    let id = 0;
    let result: Promise<ExecResult>;
    let ended = false;
    // The last write per sink: wait() resolves once it has been handled. A sink over its high-water mark pauses
    // the whole connection, so the agent stops reading the command's pipes (flow control, shared by streams).
    const lastWrite = new Map<Writable, Promise<void>>();
    const write = (w: Writable, data: Buffer) => {
      lastWrite.set(w, new Promise<void>((r) => w.write(data, () => r())));
      if (w.writableNeedDrain) this.holdUntilDrained(w);
    };
    const stopStdin = () => {
      io.stdin?.off('data', onStdin);
      io.stdin?.off('end', onStdinEnd);
    };
    const onStdin = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      let full = false;
      for (let off = 0; off < buf.length; off += DATA_CHUNK)
        full = !this.send(encodeFrame(FrameType.data, id, buf.subarray(off, off + DATA_CHUNK))) || full;
      if (full && io.stdin) {
        // The transport is backed up: hold stdin until it drains.
        io.stdin.pause();
        this.stream.once('drain', () => io.stdin?.resume());
      }
    };
    const onStdinEnd = () => {
      if (!ended) this.send(encodeFrame(FrameType.eof, id));
    };
    let budget: ReadBudget | undefined;
    const counted = (frame: Frame) => !budget || budget.add(frame.payload.length);
    try {
      result = new Promise<ExecResult>((resolve, reject) => {
        id = this.open(
          { op: 'exec', argv: req.argv, env: req.env, cwd: req.cwd, user: req.user, tty: req.tty },
          {
            onFrame: (frame) => {
              switch (frame.type) {
                case FrameType.reply: {
                  const body = parseJson(frame.payload);
                  if (execStartedSchema.safeParse(body).success) return;
                  ended = true;
                  budget?.done();
                  this.streams.delete(id);
                  stopStdin();
                  reject(agentError(body, 'exec'));
                  return;
                }
                case FrameType.data:
                  if (counted(frame)) write(io.stdout, frame.payload);
                  return;
                case FrameType.stderr:
                  if (counted(frame)) write(io.stderr, frame.payload);
                  return;
                case FrameType.exit: {
                  ended = true;
                  budget?.done();
                  this.streams.delete(id);
                  stopStdin();
                  const exit = exitSchema.safeParse(parseJson(frame.payload));
                  if (!exit.success) return reject(operationFailed('agent sent a malformed exit report'));
                  Promise.all(lastWrite.values()).then(() => resolve(exit.data), reject);
                  return;
                }
                case FrameType.open:
                case FrameType.eof:
                case FrameType.control:
                  return; // host-to-agent types: never sent by the agent
              }
            },
            onClose: (err) => {
              ended = true;
              budget?.done();
              stopStdin();
              reject(err);
            },
          },
        );
        if (io.limit) budget = readBudget(io.limit, (err) => this.drop(err));
      });
    } catch (err) {
      result = Promise.reject(err);
    }
    result.catch(() => {}); // surfaced through wait(); avoid an unhandled rejection before it is called
    if (io.stdin) {
      io.stdin.on('data', onStdin);
      io.stdin.once('end', onStdinEnd);
    } else if (!req.tty && id) this.send(encodeFrame(FrameType.eof, id));
    return {
      resize: (rows, cols) => {
        if (!ended) this.send(encodeJson(FrameType.control, id, { op: 'resize', rows, cols }));
      },
      signal: (name) => {
        if (!ended) this.send(encodeJson(FrameType.control, id, { op: 'signal', signal: name }));
      },
      wait: () => result,
    };
  }

  /** A regular file of the guest, refused (and the connection dropped) past limit's size or time. */
  readFile(path: string, limit: FileReadLimit): Promise<Buffer> {
    const bounds = { ...limit, what: limit.what ?? path };
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const id = this.open(
        // maxBytes: the agent refuses a larger file up front (an older agent ignores it: the drop below remains).
        { op: 'read_file', path, maxBytes: bounds.maxBytes },
        {
          onFrame: (frame) => {
            if (frame.type === FrameType.reply) {
              const body = parseJson(frame.payload);
              const info = fileInfoSchema.safeParse(body);
              if (info.success) {
                if (info.data.size > bounds.maxBytes) this.drop(tooMuch(bounds));
                return;
              }
              budget.done();
              this.streams.delete(id);
              reject(agentError(body, 'read_file'));
            } else if (frame.type === FrameType.data) {
              if (budget.add(frame.payload.length)) chunks.push(frame.payload);
            } else if (frame.type === FrameType.eof) {
              budget.done();
              this.streams.delete(id);
              resolve(Buffer.concat(chunks));
            }
          },
          onClose: (err) => {
            budget.done();
            reject(err);
          },
        },
      );
      const budget = readBudget(bounds, (err) => this.drop(err));
    });
  }

  async writeFile(path: string, data: Buffer | string, opts: WriteFileOptions = {}): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const done = new Promise<void>((resolve, reject) => {
      const id = this.open(
        { op: 'write_file', path, mode: opts.mode, uid: opts.uid, gid: opts.gid },
        {
          onFrame: (frame) => {
            if (frame.type !== FrameType.reply) return;
            this.streams.delete(id);
            const body = parseJson(frame.payload);
            if (okSchema.safeParse(body).success) resolve();
            else reject(agentError(body, 'write_file'));
          },
          onClose: reject,
        },
      );
      (async () => {
        for (let off = 0; off < buf.length; off += DATA_CHUNK) {
          if (!this.streams.has(id)) return; // the agent already refused
          if (!this.send(encodeFrame(FrameType.data, id, buf.subarray(off, off + DATA_CHUNK))))
            await new Promise<void>((r) => this.stream.once('drain', () => r()));
        }
        this.send(encodeFrame(FrameType.eof, id));
      })().catch(reject);
    });
    return done;
  }

  /**
   * Opens a TCP connection to a port of the guest (for a forward). Nothing listening there rejects with a
   * GuestConnectError of reason `refused`; so does a guest that does not answer within timeoutMs (`timeout`).
   */
  connectTcp(target: TcpTarget, timeoutMs = REPLY_TIMEOUT_MS): Promise<GuestTcpStream> {
    return new Promise((resolve, reject) => {
      let stream: GuestTcpStream | undefined;
      const channel: TcpChannel = {
        send: (frame) => this.send(frame),
        onceDrain: (fn) => {
          if (this.closedError) return fn();
          this.drainWaiters.push(fn);
        },
        forget: () => this.streams.delete(id),
        get open() {
          return !client.closed;
        },
      };
      const client = this;
      const id = this.open(
        { op: 'connect', port: target.port, address: target.address },
        {
          onFrame: (frame) => {
            if (stream) return stream.onFrame(frame);
            if (frame.type !== FrameType.reply) return; // nothing but the reply comes before it
            clearTimeout(timer);
            const body = parseJson(frame.payload);
            if (okSchema.safeParse(body).success) {
              stream = new GuestTcpStream(id, channel);
              return resolve(stream);
            }
            this.streams.delete(id);
            const refused = connectErrorSchema.safeParse(body);
            if (refused.success && refused.data.error.reason)
              return reject(
                new GuestConnectError(
                  refused.data.error.reason,
                  `guest agent: ${refused.data.error.message}`,
                ),
              );
            reject(agentError(body, 'connect'));
          },
          onClose: (err) => {
            clearTimeout(timer);
            if (stream) stream.onClose(err);
            else reject(err);
          },
        },
      );
      const timer = setTimeout(() => {
        // Only this stream gives up; the agent drops it when the reset arrives.
        this.streams.delete(id);
        this.send(encodeJson(FrameType.control, id, { op: 'reset' }));
        reject(
          new GuestConnectError(
            'timeout',
            `the guest agent did not connect to port ${target.port} within ${timeoutMs / 1000} s`,
          ),
        );
      }, timeoutMs);
    });
  }

  /** Powers the guest off (the agent syncs first). Resolves when the agent accepted. */
  async shutdown(): Promise<void> {
    await this.request({ op: 'shutdown' }, okSchema);
  }

  async reboot(): Promise<void> {
    await this.request({ op: 'reboot' }, okSchema);
  }

  close(): void {
    this.fail(operationFailed('agent connection closed by the client'));
    this.stream.destroy();
  }
}
