import { mkdtemp, open, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Ext4Image,
  Ext4Writer,
  ImageTooSmallError,
  type InodeSpec,
  type TreeEntry,
} from '../../src/ext4/index.js';
import { createRunner } from '../../src/host/index.js';
import { readImageXattr, statImage } from '../fixtures/ext4-reader.js';

const runner = createRunner();
const MiB = 1024 * 1024;
const NOW = 1_700_000_000;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-ext4-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = (kind: InodeSpec['kind'], mode: number, extra: Partial<InodeSpec> = {}): InodeSpec => ({
  kind,
  mode,
  uid: 0,
  gid: 0,
  mtime: NOW,
  xattrs: new Map(),
  ...extra,
});
const dirOf = (children: TreeEntry[], mode = 0o755): InodeSpec & { children: TreeEntry[] } => ({
  ...spec('dir', mode),
  children,
});
const e = (name: string, inode: InodeSpec, children?: TreeEntry[]): TreeEntry =>
  children ? { name, inode, children } : { name, inode };

async function fsckClean(image: string): Promise<void> {
  const r = await runner.run(['e2fsck', '-fn', image], { allowFailure: true });
  expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
}

async function* chunks(parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield p;
}

/** A file's bytes as banger's own reader sees them. */
async function readBack(image: string, path: string): Promise<Buffer> {
  const img = await Ext4Image.open(image);
  const out = join(dir, 'read-back');
  const fh = await open(out, 'w');
  try {
    const inode = await img.lookup(path);
    if (!inode) throw new Error(`${path} is not in the image`);
    await img.copyFile(inode, fh);
  } finally {
    await fh.close();
    await img.close();
  }
  const data = await readFile(out);
  await rm(out);
  return data;
}

describe('ext4 writer', () => {
  it('writes every inode kind so that e2fsck, debugfs and our reader agree', async () => {
    const image = join(dir, 'all.ext4');
    const w = await Ext4Writer.create(image);
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const hello = spec('file', 0o644, {
      uid: 100_000,
      gid: 70_000,
      mtimeNsec: 123_456_789,
      data: await w.writeBytes(Buffer.from('hello world\n')),
    });
    const ping = spec('file', 0o4755, {
      data: await w.writeBytes(Buffer.alloc(3 * MiB + 5, 7)),
      xattrs: new Map([['security.capability', cap]]),
    });
    const manyXattrs = spec('file', 0o644, {
      xattrs: new Map([
        ['user.long', Buffer.alloc(600, 0x41)],
        ['trusted.t', Buffer.from('v')],
        ['security.selinux', Buffer.from('system_u:object_r:bin_t:s0\0')],
      ]),
    });
    const root: TreeEntry = e('', dirOf([]), [
      e('hello', hello),
      e('hello.link', hello),
      e('ping', ping),
      e('xattrs', manyXattrs),
      e('fast', spec('symlink', 0o777, { symlinkTarget: 'hello' })),
      e('slow', spec('symlink', 0o777, { symlinkTarget: `${'d/'.repeat(150)}end` })),
      e('null', spec('char', 0o666, { devMajor: 1, devMinor: 3 })),
      e('nvme', spec('block', 0o660, { devMajor: 259, devMinor: 65535, gid: 6 })),
      e('initctl', spec('fifo', 0o600)),
      e('tmp', dirOf([], 0o1777), []),
      e('future', spec('file', 0o644, { mtime: 2 ** 33 })),
      e('past', spec('file', 0o644, { mtime: -1_000_000 })),
    ]);
    await w.finish(root, { sizeBytes: 64 * MiB, now: NOW });
    await w.close();
    await fsckClean(image);

    const st = await statImage(image, [
      '/hello',
      '/hello.link',
      '/ping',
      '/slow',
      '/null',
      '/nvme',
      '/initctl',
      '/tmp',
    ]);
    expect(st.get('/hello')).toMatchObject({
      type: 'regular',
      uid: 100_000,
      gid: 70_000,
      mode: 0o644,
      links: 2,
      size: 12,
    });
    expect(st.get('/ping')).toMatchObject({
      mode: 0o4755,
      size: 3 * MiB + 5,
      xattrs: ['security.capability'],
    });
    expect(st.get('/slow')).toMatchObject({ type: 'symlink', size: 303 });
    expect(st.get('/null')).toMatchObject({ type: 'character special', mode: 0o666, device: [1, 3] });
    expect(st.get('/nvme')).toMatchObject({ type: 'block special', gid: 6, device: [259, 65535] });
    expect(st.get('/initctl')).toMatchObject({ type: 'FIFO', mode: 0o600 });
    expect(st.get('/tmp')).toMatchObject({ type: 'directory', mode: 0o1777, links: 2 });
    expect(await readImageXattr(image, '/ping', 'security.capability')).toEqual(cap);
    expect((await readImageXattr(image, '/xattrs', 'user.long')).length).toBe(600);
    expect(await readBack(image, '/ping')).toEqual(Buffer.alloc(3 * MiB + 5, 7));
    expect((await readBack(image, '/hello')).toString()).toBe('hello world\n');

    const img = await Ext4Image.open(image);
    try {
      expect((await img.readSymlink((await img.lookup('/fast'))!)).toString()).toBe('hello');
      expect((await img.readSymlink((await img.lookup('/slow'))!)).toString()).toBe(`${'d/'.repeat(150)}end`);
      expect((await img.lookup('/future'))!.mtime).toBe(2 ** 33 % 2 ** 32);
      const names = (await img.readDir((await img.lookup('/'))!)).map((d) => d.name.toString());
      expect(names).toEqual(expect.arrayContaining(['.', '..', 'lost+found', 'hello', 'tmp']));
    } finally {
      await img.close();
    }
    // Nanoseconds and the epoch bits live in the extra fields.
    const raw = (await runner.run(['debugfs', '-R', 'stat /hello', image])).stdout;
    expect(raw).toMatch(/mtime: 0x6553f100:1d6f3454/);
    const future = (await runner.run(['debugfs', '-R', 'stat /future', image])).stdout;
    expect(future).toMatch(/mtime: 0x00000000:00000002/);
  });

  it('leaves all-zero blocks as holes and describes many extents with a deeper tree', async () => {
    const image = join(dir, 'sparse.ext4');
    const w = await Ext4Writer.create(image);
    const block = (fill: number) => Buffer.alloc(4096, fill);
    const sparse = await w.writeFile(40 * MiB, chunks([block(1), Buffer.alloc(40 * MiB - 8192), block(2)]));
    // 3000 data blocks each followed by a hole: 3000 extents, more than one index level holds.
    const parts: Buffer[] = [];
    for (let i = 0; i < 3000; i++) parts.push(block(3), block(0));
    const fragmented = await w.writeFile(3000 * 8192, chunks(parts));
    expect(sparse.extents.map((x) => x.len)).toEqual([1, 1]);
    expect(fragmented.extents).toHaveLength(3000);
    await w.finish(
      e('', dirOf([]), [
        e('sparse', spec('file', 0o644, { data: sparse })),
        e('frag', spec('file', 0o644, { data: fragmented })),
      ]),
      { sizeBytes: 128 * MiB, now: NOW },
    );
    await w.close();
    await fsckClean(image);
    const frag = (await runner.run(['debugfs', '-R', 'stat /frag', image])).stdout;
    // debugfs names tree blocks by depth: ETB1 exists only under a two-level tree.
    expect(frag).toMatch(/\(ETB1\)/);
    const sparseBack = await readBack(image, '/sparse');
    expect(sparseBack.length).toBe(40 * MiB);
    expect(sparseBack.subarray(0, 4096)).toEqual(block(1));
    expect(sparseBack.subarray(40 * MiB - 4096)).toEqual(block(2));
    expect(sparseBack.subarray(4096, 40 * MiB - 4096).every((b) => b === 0)).toBe(true);
    expect((await readBack(image, '/frag')).subarray(8192, 12288)).toEqual(block(3));
  });

  it('reuses the blocks of released files and refuses content larger than the image', async () => {
    const image = join(dir, 'reuse.ext4');
    const w = await Ext4Writer.create(image);
    const first = await w.writeBytes(Buffer.alloc(MiB, 1));
    w.release(first);
    const second = await w.writeBytes(Buffer.alloc(MiB, 2));
    expect(second.extents[0]!.start).toBe(first.extents[0]!.start);
    const big = await w.writeBytes(Buffer.alloc(20 * MiB, 3));
    const root = e('', dirOf([]), [
      e('second', spec('file', 0o644, { data: second })),
      e('big', spec('file', 0o644, { data: big })),
    ]);
    await expect(w.finish(root, { sizeBytes: 16 * MiB, now: NOW })).rejects.toBeInstanceOf(
      ImageTooSmallError,
    );
    await w.close();
  });

  it('makes an image of exactly the size asked for, which resize2fs can grow', async () => {
    const image = join(dir, 'exact.ext4');
    const size = 300 * MiB + 12_288;
    const w = await Ext4Writer.create(image);
    const data = await w.writeBytes(Buffer.from('x'));
    await w.finish(e('', dirOf([]), [e('x', spec('file', 0o644, { data }))]), { sizeBytes: size, now: NOW });
    await w.close();
    expect((await stat(image)).size).toBe(size);
    await fsckClean(image);
    await truncate(image, 1024 * MiB);
    await runner.run(['resize2fs', image]);
    await fsckClean(image);
    expect((await readBack(image, '/x')).toString()).toBe('x');
  });
});
