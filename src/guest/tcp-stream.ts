import { Duplex } from 'node:stream';
import { z } from 'zod';
import { BangerError, operationFailed } from '../model/index.js';
import { DATA_CHUNK, encodeFrame, encodeJson, type Frame, FrameType } from './protocol.js';

/** Why the agent could not open a connection to a guest port; `refused` is "nothing listens there". */
export type GuestConnectReason = 'refused' | 'timeout' | 'unreachable' | 'failed';

/** A `connect` the agent answered with an error: callers decide on `reason`, never on the message. */
export class GuestConnectError extends BangerError {
  readonly reason: GuestConnectReason;

  constructor(reason: GuestConnectReason, message: string) {
    super('operation_failed', message);
    this.name = 'GuestConnectError';
    this.reason = reason;
  }
}

/** The agent's error reply to `connect` carries a reason besides banger's code. */
export const connectErrorSchema = z.object({
  ok: z.literal(false),
  error: z.object({
    code: z.string(),
    message: z.string().max(4096),
    reason: z.enum(['refused', 'timeout', 'unreachable', 'failed']).optional(),
  }),
});

/**
 * Per-stream flow control (docs/agent-protocol.md): each side has at most this many bytes in flight that the
 * other has not acknowledged, so a stalled reader or server holds back its own stream only, never the agent
 * connection the other streams (exec, health, other forwards) share. The agent's value is the same.
 */
export const CONNECT_WINDOW = 256 * 1024;
/** The host acknowledges the guest's bytes in steps of this many, once its reader took them. */
const ACK_STEP = 64 * 1024;

const ackSchema = z.object({ ack: z.number().int().min(0).max(0xffffffff) });

/** How a connect stream ended, from the agent's EXIT frame. */
const endSchema = z.object({ reset: z.boolean(), message: z.string().max(4096).optional() });

/** What a stream needs of the client that carries it. */
export interface TcpChannel {
  /** Writes a frame to the agent connection; false: wait for drain before the next. */
  send(frame: Buffer): boolean;
  onceDrain(fn: () => void): void;
  /** The stream is over for the host: later frames for it are dropped. */
  forget(): void;
  /** False once the agent connection is gone. */
  readonly open: boolean;
}

/**
 * A TCP connection to a guest port through the agent, as a Node duplex: writes become DATA frames, end()
 * an EOF frame (the guest's socket is shut down for writing: a half-close), and the guest's bytes are read
 * from it. A reset on the guest's side destroys it with an error; destroying it early resets the guest's.
 */
export class GuestTcpStream extends Duplex {
  private readonly id: number;
  private readonly channel: TcpChannel;
  private eofSeen = false;
  private finalSent = false;
  private ended = false;
  /** Guest bytes pushed to our reader, and how many of them were acknowledged to the agent. */
  private pushed = 0;
  private acked = 0;
  /** Our bytes sent that the agent has not acknowledged; a write waits while the window is full. */
  private inFlight = 0;
  private pending: { buf: Buffer; done: (err?: Error | null) => void } | undefined;

  constructor(id: number, channel: TcpChannel) {
    super({ allowHalfOpen: true });
    this.id = id;
    this.channel = channel;
  }

  /** Frames the agent sends for this stream after it accepted the connect. */
  onFrame(frame: Frame): void {
    if (this.destroyed) return;
    switch (frame.type) {
      case FrameType.data:
        if (this.eofSeen) return void this.destroy(operationFailed('the guest agent sent data after EOF'));
        // An agent that ignores the window is cut off here rather than buffered without end.
        if (this.readableLength + frame.payload.length > 2 * CONNECT_WINDOW)
          return void this.destroy(operationFailed('the guest agent sent past its window'));
        this.pushed += frame.payload.length;
        this.push(frame.payload);
        this.ackConsumed();
        return;
      case FrameType.control: {
        const ack = ackSchema.safeParse(parseJson(frame.payload));
        if (!ack.success) return;
        this.inFlight = Math.max(0, this.inFlight - ack.data.ack);
        this.flush();
        return;
      }
      case FrameType.eof:
        if (this.eofSeen) return;
        this.eofSeen = true;
        this.push(null);
        return;
      case FrameType.exit: {
        this.ended = true;
        this.channel.forget();
        const end = endSchema.safeParse(parseJson(frame.payload));
        if (!end.success) return void this.destroy(operationFailed('the guest agent sent a malformed end'));
        if (end.data.reset)
          return void this.destroy(
            new BangerError('operation_failed', `the guest reset the connection: ${end.data.message ?? ''}`),
          );
        if (!this.eofSeen) {
          this.eofSeen = true;
          this.push(null);
        }
        return;
      }
      case FrameType.reply: // only one, before this stream existed
      case FrameType.stderr:
      case FrameType.open:
        return; // not part of a connect stream: ignored
    }
  }

  /** The agent connection is gone: the guest's end is reset by the agent (it drops the connection's streams). */
  onClose(err: BangerError): void {
    this.ended = true;
    this.destroy(err);
  }

  /** Acknowledges the bytes our reader has taken (pushed, no longer buffered), in steps. */
  private ackConsumed(): void {
    const consumed = this.pushed - this.readableLength;
    const delta = consumed - this.acked;
    // Small steps wait: the window is four steps wide, so an unacknowledged remainder never stalls the agent.
    if (delta < ACK_STEP || this.ended || !this.channel.open) return;
    this.acked = consumed;
    this.channel.send(encodeJson(FrameType.control, this.id, { op: 'ack', bytes: delta }));
  }

  override _read(): void {
    this.ackConsumed();
  }

  /** Sends what the window allows of the pending write; completes it once all of it is sent. */
  private flush(): void {
    const p = this.pending;
    if (!p) return;
    if (this.ended || !this.channel.open) {
      this.pending = undefined;
      p.done(operationFailed('the guest connection is closed'));
      return;
    }
    let ok = true;
    while (p.buf.length > 0 && this.inFlight < CONNECT_WINDOW) {
      const n = Math.min(DATA_CHUNK, CONNECT_WINDOW - this.inFlight, p.buf.length);
      ok = this.channel.send(encodeFrame(FrameType.data, this.id, p.buf.subarray(0, n)));
      this.inFlight += n;
      p.buf = p.buf.subarray(n);
    }
    if (p.buf.length > 0) return; // the rest goes when the agent acknowledges
    this.pending = undefined;
    if (ok) p.done();
    else this.channel.onceDrain(() => p.done());
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.pending = { buf: chunk, done };
    this.flush();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finalSent = true;
    if (!this.ended) this.channel.send(encodeFrame(FrameType.eof, this.id));
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.pending = undefined; // a destroyed stream's unfinished write is moot
    // Both halves closed in order: the agent finishes on its own (it still flushes our last bytes). Anything
    // else (an error, an early destroy) resets the guest's end.
    const orderly = this.eofSeen && this.finalSent && !err;
    if (!this.ended && !orderly && this.channel.open)
      this.channel.send(encodeJson(FrameType.control, this.id, { op: 'reset' }));
    if (!this.ended) this.channel.forget();
    this.ended = true;
    done(err);
  }
}

function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}
