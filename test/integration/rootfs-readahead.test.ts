// The next layer is decompressed while the current one is written (flatten's read-ahead). What must hold:
// the same image as one layer at a time, a bad next layer fails in its turn and names itself, a failing
// layer closes the one read ahead, cancellation during read-ahead leaves nothing, and the read-ahead stays
// within its bound.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerSource } from '../../src/model/layer.js';
import { type BuildRootfsOptions, buildRootfs } from '../../src/rootfs/index.js';
import { fsck, readImageFile } from '../fixtures/ext4-reader.js';
import { layerOf, packTar } from '../fixtures/layers.js';

const MiB = 1024 * 1024;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-rootfs-readahead-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const build = (layers: LayerSource[], extra: Partial<BuildRootfsOptions> = {}) =>
  buildRootfs({ layers, output: join(dir, 'out.ext4'), sizeBytes: 128 * MiB, ...extra });

/** A gzipped tar whose one file holds `size` bytes of `fill`. */
async function gzipLayer(name: string, size: number, fill: number): Promise<Buffer> {
  return gzipSync(await packTar([{ name, type: 'file', mode: 0o644, content: Buffer.alloc(size, fill) }]));
}
const fileLayer = async (name: string, size: number, fill: number, digest: string) =>
  layerOf(await gzipLayer(name, size, fill), digest);

/**
 * A layer over `bytes`, handed out in 64 KiB pieces only as fast as its reader asks, so the test sees
 * when it was opened, how much was read from it, and when it was closed.
 */
function watched(bytes: Buffer, digest: string) {
  const seen = { opened: false, bytesRead: 0, closed: false };
  const source: LayerSource = {
    digest,
    open: async () => {
      seen.opened = true;
      const stream = Readable.from(
        (function* () {
          for (let at = 0; at < bytes.length; at += 64 * 1024) {
            const piece = bytes.subarray(at, at + 64 * 1024);
            seen.bytesRead += piece.length;
            yield piece;
          }
        })(),
        { highWaterMark: 1 },
      );
      stream.on('close', () => {
        seen.closed = true;
      });
      return stream;
    },
  };
  return { source, seen };
}

/** A plain layer whose one 2 MiB file stops half-way until `release()`: the next layer is read ahead meanwhile. */
async function heldLayer(): Promise<{ first: LayerSource; release: () => void }> {
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const tar = await packTar([{ name: 'a', type: 'file', mode: 0o644, content: Buffer.alloc(2 * MiB, 1) }]);
  const first: LayerSource = {
    digest: 'sha256:first',
    open: async () =>
      Readable.from(
        (async function* () {
          yield tar.subarray(0, 1 * MiB);
          await held;
          yield tar.subarray(1 * MiB);
        })(),
      ),
  };
  return { first, release };
}

describe('reading the next layer ahead', () => {
  it('builds the same content with and without read-ahead', async () => {
    const layers = [
      await fileLayer('a', 3 * MiB, 0x61, 'l1'),
      await fileLayer('b', 5 * MiB, 0x62, 'l2'),
      await fileLayer('a', 1 * MiB, 0x63, 'l3'),
    ];
    for (const readAheadBytes of [0, 1 * MiB]) {
      const out = join(dir, `out-${readAheadBytes}.ext4`);
      const { report } = await buildRootfs({ layers, output: out, sizeBytes: 128 * MiB, readAheadBytes });
      expect(report.layers.map((l) => [l.digest, l.entries])).toEqual([
        ['l1', 1],
        ['l2', 1],
        ['l3', 1],
      ]);
      expect((await fsck(out)).exitCode).toBe(0);
      // Buffer.equals: toEqual walks 5 MiB element by element.
      expect((await readImageFile(out, '/a')).equals(Buffer.alloc(1 * MiB, 0x63))).toBe(true);
      expect((await readImageFile(out, '/b')).equals(Buffer.alloc(5 * MiB, 0x62))).toBe(true);
    }
  });

  it('fails a corrupt next layer in its turn, naming it, and leaves nothing', async () => {
    const good = await fileLayer('a', 2 * MiB, 0x61, 'sha256:good');
    const corrupt = layerOf(
      Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(4096, 0xff)]),
      'sha256:bad',
    );
    await expect(build([good, corrupt])).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringMatching(/^sha256:bad is not a readable tar layer/),
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('closes the layer read ahead when the current one fails', async () => {
    const broken = layerOf(
      Buffer.from('this is no tar at all, not even close to one'.repeat(20)),
      'sha256:x',
    );
    const next = watched(await gzipLayer('b', 4 * MiB, 0x62), 'sha256:next');
    await expect(build([broken, next.source], { readAheadBytes: 1 * MiB })).rejects.toMatchObject({
      message: expect.stringMatching(/^sha256:x /),
    });
    await expect.poll(() => next.seen.closed).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('reads ahead no more than its bound while the current layer is held up', async () => {
    const { first, release } = await heldLayer();
    // Random content, so compressed bytes read from the source track the decompressed bytes held.
    const random = await packTar([{ name: 'b', type: 'file', mode: 0o644, content: randomBytes(16 * MiB) }]);
    const next = watched(gzipSync(random), 'sha256:next');
    const building = build([first, next.source], { readAheadBytes: 1 * MiB });
    await expect.poll(() => next.seen.bytesRead, { timeout: 30_000 }).toBeGreaterThan(0);
    // Give the read-ahead time to run into its bound, then check it stopped near it: the bound plus the
    // buffers of the streams in between (file, gunzip chunks), far from the layer's 16 MiB.
    await new Promise((r) => setTimeout(r, 1000));
    expect(next.seen.bytesRead).toBeLessThan(4 * MiB);
    expect(next.seen.closed).toBe(false);
    release();
    const { report } = await building;
    expect(report.layers.map((l) => l.digest)).toEqual(['sha256:first', 'sha256:next']);
  });

  it('stops a read-ahead in flight when the build is cancelled, and leaves nothing', async () => {
    const { first, release } = await heldLayer();
    const next = watched(await gzipLayer('b', 8 * MiB, 0x62), 'sha256:next');
    const controller = new AbortController();
    const building = build([first, next.source], { readAheadBytes: 1 * MiB, signal: controller.signal });
    await expect.poll(() => next.seen.opened, { timeout: 30_000 }).toBe(true);
    controller.abort();
    release();
    await expect(building).rejects.toMatchObject({ code: 'cancelled' });
    await expect.poll(() => next.seen.closed).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });
});
