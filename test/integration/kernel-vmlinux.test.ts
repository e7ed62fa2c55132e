/**
 * vmlinux extraction against payloads made by the real tools the kernel build uses: `xz --check=crc32` (decoded
 * through the xz tool) and `lz4 -l` (decoded in TypeScript), each with the kernel's 4-byte size trailer.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { extractVmlinux } from '../../src/kernel/index.js';

const has = (tool: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
};

// Compressible but not trivial: an ELF header, random runs and repeats.
const ELF = Buffer.concat([
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]),
  ...Array.from({ length: 64 }, (_, i) => (i % 2 ? randomBytes(4096) : Buffer.alloc(8192, i))),
]);

function bzImage(payload: Buffer): Buffer {
  const setup = Buffer.alloc(2 * 512);
  setup.writeUInt8(1, 0x1f1);
  setup.write('HdrS', 0x202, 'latin1');
  setup.writeUInt16LE(0x20f, 0x206);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(ELF.length);
  const full = Buffer.concat([payload, size]);
  setup.writeUInt32LE(0, 0x248);
  setup.writeUInt32LE(full.length, 0x24c);
  return Buffer.concat([setup, full]);
}

describe('extractVmlinux with tool-made payloads', () => {
  it.skipIf(!has('xz'))(
    'decodes xz (as scripts/xz_wrap.sh makes it; skipped without the xz tool)',
    async () => {
      const xz = execFileSync('xz', ['--check=crc32', '--x86', '--lzma2=', '-c'], { input: ELF });
      expect((await extractVmlinux(bzImage(xz), createRunner())).equals(ELF)).toBe(true);
    },
  );

  it.skipIf(!has('lz4'))(
    'decodes lz4 legacy frames (as `lz4 -l` makes them; skipped without the lz4 tool)',
    async () => {
      const lz4 = execFileSync('lz4', ['-l', '-9', '-c'], { input: ELF });
      expect((await extractVmlinux(bzImage(lz4))).equals(ELF)).toBe(true);
    },
  );
});
