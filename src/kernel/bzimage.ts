import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'zstd-napi';
import type { Runner } from '../host/index.js';
import { operationFailed } from '../model/errors.js';
import { decodeLz4Legacy } from './lz4-legacy.js';

/** What a bzImage's setup header says about itself (Documentation/arch/x86/boot.rst). */
export interface BzImageInfo {
  /** The `kernel_version` string, e.g. "6.1.0-56-cloud-amd64 (debian-kernel@…) #1 SMP …". */
  versionString: string | undefined;
  /** Offset and length of the compressed kernel inside the file. */
  payloadOffset: number;
  payloadLength: number;
}

const ELF_MAGIC = 0x7f454c46;

/** True for an ELF file (what Firecracker wants as `kernel_image_path` on x86_64). */
export function isElf(data: Uint8Array): boolean {
  return data.length >= 4 && Buffer.from(data.buffer, data.byteOffset, 4).readUInt32BE(0) === ELF_MAGIC;
}

/** Parses a bzImage's setup header; undefined when `data` is not a bzImage. */
export function parseBzImage(data: Buffer): BzImageInfo | undefined {
  if (data.length < 0x250 || data.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const protocol = data.readUInt16LE(0x206);
  let setupSects = data.readUInt8(0x1f1);
  if (setupSects === 0) setupSects = 4;
  const protectedStart = (setupSects + 1) * 512;
  let versionString: string | undefined;
  const versionPtr = data.readUInt16LE(0x20e);
  if (versionPtr !== 0 && 0x200 + versionPtr < data.length) {
    const start = 0x200 + versionPtr;
    const end = data.indexOf(0, start);
    versionString = data.toString('latin1', start, end < 0 ? Math.min(start + 256, data.length) : end);
  }
  if (protocol < 0x208) return { versionString, payloadOffset: -1, payloadLength: 0 };
  return {
    versionString,
    payloadOffset: protectedStart + data.readUInt32LE(0x248),
    payloadLength: data.readUInt32LE(0x24c),
  };
}

/** The kernel release (`uname -r`) from a bzImage's version string. */
export function kernelReleaseOf(data: Buffer): string | undefined {
  return parseBzImage(data)?.versionString?.split(' ')[0];
}

type Codec = { name: string; magic: Buffer };
const CODECS: Codec[] = [
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]) },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]) },
  { name: 'lz4', magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]) },
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) },
];

async function decode(codec: string, payload: Buffer, runner: Runner | undefined): Promise<Buffer> {
  switch (codec) {
    case 'gzip':
      return gunzipSync(payload);
    case 'zstd':
      // The kernel appends a 4-byte size after the frame; zstd refuses trailing bytes, so try without them.
      try {
        return zstdDecompress(payload);
      } catch {
        return zstdDecompress(payload.subarray(0, payload.length - 4));
      }
    case 'lz4':
      return decodeLz4Legacy(payload);
    case 'xz': {
      if (!runner) throw new Error('xz needs the xz tool');
      const dir = await mkdtemp(join(tmpdir(), 'banger-vmlinux-'));
      try {
        await writeFile(join(dir, 'k.xz'), payload);
        await runner.run(['xz', '-d', '-k', '-q', '--single-stream', join(dir, 'k.xz')], {
          allowFailure: true,
        });
        return await readFile(join(dir, 'k'));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    default:
      throw new Error(`unsupported codec ${codec}`);
  }
}

async function tryDecode(
  codec: string,
  payload: Buffer,
  runner: Runner | undefined,
): Promise<Buffer | undefined> {
  try {
    const out = await decode(codec, payload, runner);
    return isElf(out) ? out : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The uncompressed vmlinux ELF inside a bzImage, as scripts/extract-vmlinux finds it: the payload the setup
 * header points at when there is one, else every gzip/zstd/lz4/xz magic in the file until one decodes to
 * an ELF. The `runner` is needed only for xz (Node has no xz decoder).
 */
export async function extractVmlinux(bzImage: Buffer, runner?: Runner): Promise<Buffer> {
  if (isElf(bzImage)) return bzImage;
  const info = parseBzImage(bzImage);
  if (info && info.payloadOffset > 0) {
    const payload = bzImage.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength);
    const codec = CODECS.find((c) => payload.subarray(0, c.magic.length).equals(c.magic));
    if (codec) {
      const out = await tryDecode(codec.name, payload, runner);
      if (out) return out;
    }
  }
  for (const codec of CODECS) {
    for (let at = bzImage.indexOf(codec.magic); at >= 0; at = bzImage.indexOf(codec.magic, at + 1)) {
      const out = await tryDecode(codec.name, bzImage.subarray(at), runner);
      if (out) return out;
    }
  }
  throw operationFailed('could not find an uncompressed vmlinux inside the kernel image', {
    hint: 'banger decodes gzip, zstd, lz4 and xz bzImages; import a vmlinux ELF directly instead',
  });
}
