import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import tarStream from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ext4Image } from '../../src/ext4/index.js';
import type { LayerSource } from '../../src/model/layer.js';
import { type BuildRootfsOptions, buildRootfs } from '../../src/rootfs/index.js';
import { fsck, readImageFile, statImage } from '../fixtures/ext4-reader.js';
import { type TarEntry, tarLayer } from '../fixtures/layers.js';

const MiB = 1024 * 1024;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-rootfs-layers-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds, checks e2fsck -fn is clean and that the output is all the build left. */
async function build(layers: LayerSource[], extra: Partial<BuildRootfsOptions> = {}) {
  const output = join(dir, 'out.ext4');
  const result = await buildRootfs({ layers, output, sizeBytes: 128 * MiB, ...extra });
  expect(await readdir(dir)).toEqual(['out.ext4']);
  const check = await fsck(output);
  expect(check.exitCode, check.output).toBe(0);
  return { output, result };
}

const f = (name: string, content: string, extra: Partial<TarEntry> = {}): TarEntry => ({
  name,
  type: 'file',
  mode: 0o644,
  content,
  ...extra,
});
const d = (name: string): TarEntry => ({ name, type: 'directory', mode: 0o755 });

/** A layer with one file of `size` bytes, all zeros but a marker at the very end, streamed as it is read. */
function sparseLayer(size: number, marker: Buffer): LayerSource {
  return {
    open: async () => {
      const pack = tarStream.pack();
      const out = new PassThrough();
      pack.pipe(out);
      void (async () => {
        const entry = pack.entry({ name: 'big.img', type: 'file', mode: 0o644, size });
        const zeros = Buffer.alloc(4 * MiB);
        let left = size - marker.length;
        while (left > 0) {
          const n = Math.min(left, zeros.length);
          if (!entry.write(zeros.subarray(0, n)))
            await new Promise<void>((r) => entry.once('drain', () => r()));
          left -= n;
        }
        entry.end(marker);
        await new Promise<void>((r) => entry.once('finish', () => r()));
        pack.finalize();
      })().catch((err: Error) => out.destroy(err));
      return out;
    },
  };
}

describe('rootfs layers written straight into ext4', () => {
  it('keeps a hardlink to a file that a later layer deletes and recreates', async () => {
    const { output } = await build([
      await tarLayer([f('etc/a', 'old'), { name: 'etc/b', type: 'link', linkname: 'etc/a' }]),
      await tarLayer([f('etc/.wh.a', ''), f('etc/a', 'new content')]),
    ]);
    const st = await statImage(output, ['/etc/a', '/etc/b']);
    expect(st.get('/etc/a')).toMatchObject({ links: 1, size: 11 });
    expect(st.get('/etc/b')).toMatchObject({ links: 1, size: 3 });
    expect((await readImageFile(output, '/etc/a')).toString()).toBe('new content');
    expect((await readImageFile(output, '/etc/b')).toString()).toBe('old');
  });

  it('turns a file into a directory and back across layers', async () => {
    const { output, result } = await build([
      await tarLayer([f('x', 'first'.repeat(2000)), f('keep', 'k')]),
      await tarLayer([d('x'), f('x/inner', 'inside'.repeat(3000))]),
      await tarLayer([f('x', 'last')]),
    ]);
    const st = await statImage(output, ['/x', '/x/inner', '/keep']);
    expect(st.get('/x')).toMatchObject({ type: 'regular', size: 4 });
    expect(st.has('/x/inner')).toBe(false);
    expect((await readImageFile(output, '/x')).toString()).toBe('last');
    expect((await readImageFile(output, '/keep')).toString()).toBe('k');
    expect(result.report.entries).toMatchObject({ file: 2, dir: 0 });
  });

  it('holds 50 000 files in one directory', async () => {
    const entries: TarEntry[] = [d('many')];
    for (let i = 0; i < 50_000; i++) entries.push(f(`many/file-${i}`, i % 1000 === 0 ? `n${i}` : ''));
    const { output, result } = await build([await tarLayer(entries)], { sizeBytes: 256 * MiB });
    expect(result.report.entries.file).toBe(50_000);
    const img = await Ext4Image.open(output);
    try {
      const many = (await img.lookup('/many'))!;
      expect((await img.readDir(many)).length).toBe(50_002);
      expect((await img.lookup('/many/file-49999'))?.kind).toBe('regular');
    } finally {
      await img.close();
    }
    expect((await readImageFile(output, '/many/file-49000')).toString()).toBe('n49000');
  });

  it('writes a 2 GiB file of zeros as a hole, not as 2 GiB of blocks', async () => {
    const marker = Buffer.from('the end');
    const { output } = await build([sparseLayer(2 * 1024 * MiB, marker)], { sizeBytes: 3 * 1024 * MiB });
    const st = await statImage(output, ['/big.img']);
    expect(st.get('/big.img')).toMatchObject({ type: 'regular', size: 2 * 1024 * MiB });
    // The image file on the host is sparse too: its metadata and one data block, not the file's 2 GiB.
    expect((await stat(output)).blocks * 512).toBeLessThan(64 * MiB);
    const img = await Ext4Image.open(output);
    try {
      const big = (await img.lookup('/big.img'))!;
      const extents = await img.extentsOf(big);
      expect(extents).toHaveLength(1);
      expect(extents[0]).toMatchObject({ logical: 2 * 256 * 1024 - 1, length: 1 });
    } finally {
      await img.close();
    }
  });

  it('makes the image exactly the configured size', async () => {
    const size = 200 * MiB + 3 * 4096;
    const { output, result } = await build([await tarLayer([f('a', 'a')])], { sizeBytes: size });
    expect(result.sizeBytes).toBe(size);
    expect((await stat(output)).size).toBe(size);
  });
});
