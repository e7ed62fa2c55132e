import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { extractDirectory } from '../../src/rootfs/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';

// extractDirectory reads a directory out of a real ext4 image with banger's own reader (no mount, no
// e2fsprogs), as the VM service does to seed a work disk with the image's /root. The hostile images are in
// rootfs-extract-hostile.test.ts.
const runner = createRunner();
const fx = createNetnsFixture(runner);
let work: string;
let image: string;

beforeAll(async () => {
  work = await fx.tempDir();
  const tree = join(work, 'tree');
  mkdirSync(join(tree, 'root', '.ssh'), { recursive: true, mode: 0o700 });
  writeFileSync(join(tree, 'root', '.bashrc'), 'PS1=vm\n', { mode: 0o644 });
  chownSync(join(tree, 'root', '.ssh'), 1000, 1000);
  symlinkSync('.bashrc', join(tree, 'root', '.profile'));
  image = join(work, 'rootfs.ext4');
  await runner.run(['truncate', '-s', '16M', image]);
  await runner.run(['mkfs.ext4', '-F', '-q', '-d', tree, image]);
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe('extractDirectory', () => {
  it('copies a directory with its owners, modes and symlinks, into a destination with awkward characters', async () => {
    const dest = join(work, 'out "quoted" dir');
    mkdirSync(dest);
    const copy = await extractDirectory(image, '/root', dest);
    expect(copy).toBe(join(dest, 'root'));
    expect(readFileSync(join(dest, 'root', '.bashrc'), 'utf8')).toBe('PS1=vm\n');
    expect(statSync(join(dest, 'root', '.ssh'))).toMatchObject({ uid: 1000, gid: 1000 });
    expect(statSync(join(dest, 'root', '.ssh')).mode & 0o7777).toBe(0o700);
    expect(lstatSync(join(dest, 'root', '.profile')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dest, 'root', '.profile'))).toBe('.bashrc');
  });

  it('treats a path that is a symlink in the image as absent, never following it on the host', async () => {
    // A hostile image whose /root points at /etc: read naively, the host's /etc would become the seed.
    const tree = join(work, 'hostile');
    mkdirSync(tree);
    symlinkSync('/etc', join(tree, 'root'));
    const hostile = join(work, 'hostile.ext4');
    await runner.run(['truncate', '-s', '16M', hostile]);
    await runner.run(['mkfs.ext4', '-F', '-q', '-d', tree, hostile]);
    const dest = join(work, 'hostile-out');
    mkdirSync(dest);
    expect(await extractDirectory(hostile, '/root', dest)).toBeUndefined();
    expect(readdirSync(dest)).toEqual([]);
  });

  it('answers undefined for a directory the image does not have', async () => {
    const dest = join(work, 'none');
    mkdirSync(dest);
    expect(await extractDirectory(image, '/home/nobody', dest)).toBeUndefined();
  });

  it('says which image it could not read', async () => {
    const junk = join(work, 'junk.img');
    writeFileSync(junk, 'not an ext4 image');
    const dest = join(work, 'junk-out');
    mkdirSync(dest);
    await expect(extractDirectory(junk, '/root', dest)).rejects.toMatchObject({
      code: 'operation_failed',
      message: expect.stringContaining(junk),
    });
  });
});

/** Every inode under `dir` as the host sees it, keyed by relative path. */
function snapshot(dir: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (rel: string) => {
    const path = join(dir, rel);
    const st = lstatSync(path);
    const base = { mode: st.mode, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isSymbolicLink()) out.set(rel, { ...base, mtime: undefined, target: readlinkSync(path) });
    else if (st.isFile()) {
      const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
      out.set(rel, { ...base, size: st.size, sha });
    } else if (st.isDirectory()) {
      out.set(rel, base);
      for (const name of readdirSync(path)) walk(rel === '' ? name : `${rel}/${name}`);
    } else out.set(rel, { ...base, special: true });
  };
  walk('');
  return out;
}

describe('extractDirectory round trip', () => {
  const source = () => join(work, 'rich', 'root');

  beforeAll(() => {
    const r = source();
    mkdirSync(r, { recursive: true });
    chmodSync(r, 0o750);
    writeFileSync(join(r, 'suid'), '#!/bin/sh\n', { mode: 0o755 });
    chmodSync(join(r, 'suid'), 0o4755);
    mkdirSync(join(r, 'shared'));
    chownSync(join(r, 'shared'), 0, 50);
    chmodSync(join(r, 'shared'), 0o2775);
    mkdirSync(join(r, 'tmp'));
    chmodSync(join(r, 'tmp'), 0o1777);
    writeFileSync(join(r, 'high-ids'), 'x');
    chownSync(join(r, 'high-ids'), 123_456, 654_321);
    symlinkSync('/etc/passwd', join(r, 'abs-link'));
    symlinkSync('t/'.repeat(100), join(r, 'slow-link'));
    writeFileSync(join(r, 'n'.repeat(255)), 'long name');
    const sparse = join(r, 'sparse');
    writeFileSync(sparse, 'start');
    truncateSync(sparse, 10 * 1024 * 1024);
    const fd = openSync(sparse, 'r+');
    writeSync(fd, 'end', 10 * 1024 * 1024 - 3);
    closeSync(fd);
    writeFileSync(join(r, 'big'), createHash('sha512').update('seed').digest().toString('hex').repeat(4000));
    linkSync(join(r, 'big'), join(r, 'big-again'));
    mkdirSync(join(r, 'many'));
    for (let i = 0; i < 400; i++) writeFileSync(join(r, 'many', `entry-with-a-longish-name-${i}`), String(i));
    execFileSync('mkfifo', [join(r, 'fifo')]);
    for (const name of readdirSync(r)) lutimesSync(join(r, name), 1_600_000_000, 1_600_000_000);
    utimesSync(r, 1_500_000_000, 1_500_000_000);
  });

  // Default (1 KiB blocks, extents, 64bit, metadata_csum), 4 KiB blocks, and ext3-style block maps; each
  // re-indexed with e2fsck -D, so the 400-entry directory is an htree.
  it.each([
    ['1 KiB blocks', []],
    ['4 KiB blocks', ['-b', '4096']],
    ['block maps, no extents', ['-O', '^extent,^64bit']],
  ])('copies an image made from a tree back to the same tree: %s', async (_name, options) => {
    const img = join(work, `rich-${options.join('')}.ext4`);
    await runner.run(['truncate', '-s', '64M', img]);
    await runner.run(['mkfs.ext4', '-F', '-q', ...options, '-d', join(work, 'rich'), img]);
    await runner.run(['e2fsck', '-fyD', img], { allowFailure: true });
    expect((await runner.run(['debugfs', '-R', 'stat /root/many', img])).stdout).toMatch(
      /Flags: 0x\d*1\d{3}\b/,
    );
    const dest = join(work, `rich-out-${options.join('')}`);
    mkdirSync(dest, { mode: 0o700 });
    const copy = await extractDirectory(img, '/root', dest);
    const want = snapshot(source());
    want.delete('fifo'); // devices, FIFOs and sockets are not made on the host
    expect(snapshot(copy!)).toEqual(want);
    // Holes stay holes: 10 MiB apparent, a few blocks on disk.
    expect(statSync(join(copy!, 'sparse')).blocks * 512).toBeLessThan(64 * 1024);
  });
});
