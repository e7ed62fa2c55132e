import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD } from '../../../src/guest/index.js';

describe('agent frame codec', () => {
  it('encodes the documented layout: u32 BE length of type+stream+payload, type, u32 BE stream, payload', () => {
    const frame = encodeFrame(FrameType.open, 0x01020304, '{"op":"health"}');
    expect(frame.readUInt32BE(0)).toBe(5 + 15);
    expect(frame[4]).toBe(1);
    expect(frame.readUInt32BE(5)).toBe(0x01020304);
    expect(frame.subarray(9).toString()).toBe('{"op":"health"}');
    expect(encodeFrame(FrameType.eof, 7)).toEqual(Buffer.from([0, 0, 0, 5, 5, 0, 0, 0, 7]));
  });

  it('decodes frames split and joined at any byte boundary', () => {
    const frames = [
      encodeFrame(FrameType.reply, 1, '{"ok":true}'),
      encodeFrame(FrameType.data, 2, randomBytes(70_000)),
      encodeFrame(FrameType.eof, 2),
      encodeFrame(FrameType.exit, 3, '{"exitCode":0,"signal":null}'),
    ];
    const wire = Buffer.concat(frames);
    for (const step of [1, 3, 9, 4096, wire.length]) {
      const dec = new FrameDecoder();
      const got = [];
      for (let off = 0; off < wire.length; off += step) got.push(...dec.push(wire.subarray(off, off + step)));
      expect(got.map((f) => encodeFrame(f.type, f.stream, f.payload))).toEqual(frames);
      expect(dec.pending).toBe(0);
    }
  });

  it('keeps a partial frame until the rest arrives', () => {
    const dec = new FrameDecoder();
    const frame = encodeFrame(FrameType.stderr, 9, 'abc');
    expect(dec.push(frame.subarray(0, 10))).toEqual([]);
    expect(dec.pending).toBe(10);
    expect(dec.push(frame.subarray(10))).toEqual([
      { type: FrameType.stderr, stream: 9, payload: Buffer.from('abc') },
    ]);
  });

  it('refuses lengths and types no agent sends, with a clear error', () => {
    expect(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0]))).toThrow(/bad length 4/);
    expect(() => new FrameDecoder().push(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(/bad length/);
    expect(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 5, 0x63, 0, 0, 0, 1]))).toThrow(
      /unknown type 99/,
    );
    expect(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 5, 0, 0, 0, 0, 1]))).toThrow(/unknown type 0/);
  });

  it('refuses to encode oversized payloads or bad stream ids', () => {
    expect(() => encodeFrame(FrameType.data, 1, Buffer.alloc(MAX_PAYLOAD + 1))).toThrow(/exceeds/);
    expect(() => encodeFrame(FrameType.data, -1)).toThrow(/stream id/);
    expect(() => encodeFrame(FrameType.data, 2 ** 32)).toThrow(/stream id/);
    expect(encodeFrame(FrameType.data, 1, Buffer.alloc(MAX_PAYLOAD)).length).toBe(MAX_PAYLOAD + 9);
  });

  it('never throws anything but its own error on random input', () => {
    for (let i = 0; i < 500; i++) {
      const dec = new FrameDecoder();
      try {
        dec.push(randomBytes(1 + (i % 64)));
      } catch (err) {
        expect((err as Error).name).toBe('BangerError');
      }
    }
  });
});
