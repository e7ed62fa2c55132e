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

/** How a connect stream ended, from the agent's EXIT frame. */
const endSchema = z.object({ reset: z.boolean(), message: z.string().max(4096).optional() });

/** What a stream needs of the client that carries it. */
export interface TcpChannel {
  /** Writes a frame to the agent connection; false: wait for drain before the next. */
  send(frame: Buffer): boolean;
  onceDrain(fn: () => void): void;
  /** Pauses reading the agent connection while this stream's reader is full (flow control). */
  hold(key: object): void;
  release(key: object): void;
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

  constructor(id: number, channel: TcpChannel) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024 });
    this.id = id;
    this.channel = channel;
  }

  /** Frames the agent sends for this stream after it accepted the connect. */
  onFrame(frame: Frame): void {
    if (this.destroyed) return;
    switch (frame.type) {
      case FrameType.data:
        if (this.eofSeen) return void this.destroy(operationFailed('the guest agent sent data after EOF'));
        if (frame.payload.length > 0 && !this.push(frame.payload)) this.channel.hold(this);
        return;
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
      case FrameType.control:
        return; // not part of a connect stream: ignored
    }
  }

  /** The agent connection is gone: the guest's end is reset by the agent (it drops the connection's streams). */
  onClose(err: BangerError): void {
    this.ended = true;
    this.destroy(err);
  }

  override _read(): void {
    this.channel.release(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.ended || !this.channel.open) {
      done(operationFailed('the guest connection is closed'));
      return;
    }
    let ok = true;
    for (let off = 0; off < chunk.length; off += DATA_CHUNK)
      ok = this.channel.send(encodeFrame(FrameType.data, this.id, chunk.subarray(off, off + DATA_CHUNK)));
    if (ok) done();
    else this.channel.onceDrain(() => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finalSent = true;
    if (!this.ended) this.channel.send(encodeFrame(FrameType.eof, this.id));
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.channel.release(this);
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
