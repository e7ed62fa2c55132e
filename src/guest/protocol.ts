import { badRequest } from '../model/errors.js';

/**
 * The agent's wire format (docs/agent-protocol.md): `[u32 BE length][u8 type][u32 BE stream][payload]`,
 * where length counts type + stream + payload. One codec for every transport.
 */
export const FrameType = {
  open: 1,
  reply: 2,
  data: 3,
  stderr: 4,
  eof: 5,
  control: 6,
  exit: 7,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: FrameType;
  stream: number;
  payload: Buffer;
}

/** The largest payload either side accepts; the agent closes a connection that sends more. */
export const MAX_PAYLOAD = 1 << 20;
/** Host-to-agent data is sent in chunks of this size so one stream cannot hog the port. */
export const DATA_CHUNK = 64 * 1024;
const HEADER = 9;

export function encodeFrame(
  type: FrameType,
  stream: number,
  payload: Buffer | string = Buffer.alloc(0),
): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length > MAX_PAYLOAD)
    throw badRequest(`frame payload of ${body.length} bytes exceeds ${MAX_PAYLOAD}`);
  if (!Number.isInteger(stream) || stream < 0 || stream > 0xffffffff)
    throw badRequest(`bad stream id ${stream}`);
  const frame = Buffer.allocUnsafe(HEADER + body.length);
  frame.writeUInt32BE(body.length + 5, 0);
  frame.writeUInt8(type, 4);
  frame.writeUInt32BE(stream, 5);
  body.copy(frame, HEADER);
  return frame;
}

export function encodeJson(type: FrameType, stream: number, value: unknown): Buffer {
  return encodeFrame(type, stream, JSON.stringify(value));
}

/** Accumulates bytes and yields whole frames; throws a BangerError on a frame no agent would send. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Frame[] = [];
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32BE(off);
      if (len < 5 || len > MAX_PAYLOAD + 5) throw badRequest(`agent sent a frame of bad length ${len}`);
      if (this.buf.length - off < 4 + len) break;
      const type = this.buf.readUInt8(off + 4);
      if (type < FrameType.open || type > FrameType.exit)
        throw badRequest(`agent sent a frame of unknown type ${type}`);
      frames.push({
        type: type as FrameType,
        stream: this.buf.readUInt32BE(off + 5),
        // A copy: the accumulated buffer is reused, callers may keep payloads.
        payload: Buffer.from(this.buf.subarray(off + HEADER, off + 4 + len)),
      });
      off += 4 + len;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
    return frames;
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pending(): number {
    return this.buf.length;
  }
}
