import {
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { extractDirectory } from '../../src/rootfs/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';

// extractDirectory reads a directory out of a real ext4 image with debugfs (no mount), as the VM service
// does to seed a work disk with the image's /root.
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
