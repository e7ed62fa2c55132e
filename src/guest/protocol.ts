import { badRequest, operationFailed } from '../model/errors.js';

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

/**
 * Accumulates bytes and yields whole frames; throws operation_failed on a frame no agent would send (the
 * guest's fault, not the caller's), and a length out of range before anything is allocated for it. Chunks are
 * joined only once a whole frame is there, so a frame arriving in many small reads costs one copy.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private total = 0;

  push(chunk: Buffer): Frame[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.total += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.total >= 4) {
      const len = this.peekLength();
      if (len < 5 || len > MAX_PAYLOAD + 5) throw operationFailed(`agent sent a frame of bad length ${len}`);
      if (this.total < 4 + len) break;
      const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
      let off = 0;
      while (buf.length - off >= 4) {
        const flen = buf.readUInt32BE(off);
        if (flen < 5 || flen > MAX_PAYLOAD + 5)
          throw operationFailed(`agent sent a frame of bad length ${flen}`);
        if (buf.length - off < 4 + flen) break;
        const type = buf.readUInt8(off + 4);
        if (type < FrameType.open || type > FrameType.exit)
          throw operationFailed(`agent sent a frame of unknown type ${type}`);
        frames.push({
          type: type as FrameType,
          stream: buf.readUInt32BE(off + 5),
          // A copy: callers may keep payloads while the buffer is reused.
          payload: Buffer.from(buf.subarray(off + HEADER, off + 4 + flen)),
        });
        off += 4 + flen;
      }
      const rest = buf.subarray(off);
      this.chunks = rest.length ? [rest] : [];
      this.total = rest.length;
    }
    return frames;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head: Buffer[] = [];
    let n = 0;
    for (const c of this.chunks) {
      head.push(c);
      n += c.length;
      if (n >= 4) break;
    }
    return Buffer.concat(head, n).readUInt32BE(0);
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pending(): number {
    return this.total;
  }
}
