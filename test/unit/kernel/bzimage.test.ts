import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { extractVmlinux, isElf, kernelReleaseOf, parseBzImage } from '../../../src/kernel/index.js';
import { decodeLz4Legacy } from '../../../src/kernel/lz4-legacy.js';

const ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(4000, 0x41)]);

/** A bzImage with a real setup header: 1 setup sector + boot sector, then the compressed payload. */
function fakeBzImage(payload: Buffer, version = '6.12.7-test (builder@host) #1 SMP'): Buffer {
  const setup = Buffer.alloc(2 * 512);
  setup.writeUInt8(1, 0x1f1); // setup_sects
  setup.write('HdrS', 0x202, 'latin1');
  setup.writeUInt16LE(0x20f, 0x206); // boot protocol 2.15
  setup.writeUInt16LE(0x300 - 0x200, 0x20e); // kernel_version pointer, relative to 0x200
  setup.write(`${version}\0`, 0x300, 'latin1');
  const head = Buffer.alloc(64, 0x90); // decompressor code stand-in
  setup.writeUInt32LE(head.length, 0x248); // payload_offset, relative to the protected-mode start
  setup.writeUInt32LE(payload.length, 0x24c);
  return Buffer.concat([setup, head, payload, Buffer.alloc(32)]);
}

/** The kernel appends the uncompressed size (le32) to lz4/zstd/xz payloads. */
const withSize = (b: Buffer, n: number) => {
  const s = Buffer.alloc(4);
  s.writeUInt32LE(n);
  return Buffer.concat([b, s]);
};

describe('bzImage', () => {
  it('parses the setup header', () => {
    const img = fakeBzImage(gzipSync(ELF));
    expect(parseBzImage(img)).toMatchObject({ versionString: '6.12.7-test (builder@host) #1 SMP' });
    expect(kernelReleaseOf(img)).toBe('6.12.7-test');
    expect(parseBzImage(Buffer.alloc(1024))).toBeUndefined();
  });

  it('extracts a gzip payload', async () => {
    expect(await extractVmlinux(fakeBzImage(gzipSync(ELF)))).toEqual(ELF);
  });

  it('extracts a zstd payload with the size trailer', async () => {
    expect(await extractVmlinux(fakeBzImage(withSize(compress(ELF), ELF.length)))).toEqual(ELF);
  });

  it('extracts an lz4 legacy payload with the size trailer', async () => {
    // One sequence: 8 literals ("\x7fELF\x02\x01\x01A"), then a 3999-byte match at offset 1 (overlapping,
    // run-length style), then an empty final sequence.
    const block = Buffer.concat([
      Buffer.from([0x8f]),
      Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0x41]),
      Buffer.from([1, 0]),
      ...matchExtension(3999 - 4 - 15),
      Buffer.from([0x00]),
    ]);
    const frame = Buffer.concat([Buffer.from([0x02, 0x21, 0x4c, 0x18]), le32(block.length), block]);
    expect(decodeLz4Legacy(frame)).toEqual(ELF);
    expect(await extractVmlinux(fakeBzImage(withSize(frame, ELF.length)))).toEqual(ELF);
  });

  it('finds a payload by its magic when there is no setup header', async () => {
    const raw = Buffer.concat([Buffer.alloc(300, 7), gzipSync(ELF)]);
    expect(await extractVmlinux(raw)).toEqual(ELF);
  });

  it('returns an ELF unchanged and refuses what it cannot decode', async () => {
    expect(isElf(await extractVmlinux(ELF))).toBe(true);
    await expect(extractVmlinux(Buffer.alloc(4096, 3))).rejects.toThrow(
      /could not find an uncompressed vmlinux/,
    );
  });
});

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** LZ4 length extension bytes for `rest` (the amount beyond the nibble's 15). */
function matchExtension(rest: number): Buffer[] {
  const out: number[] = [];
  let r = rest;
  while (r >= 255) {
    out.push(255);
    r -= 255;
  }
  out.push(r);
  return [Buffer.from(out)];
}
