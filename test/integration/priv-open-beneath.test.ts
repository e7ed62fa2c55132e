/**
 * The root helper's loop attach is race-free by construction: the file is opened with openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) relative to the state dir, and the loop device is attached to
 * that descriptor (LOOP_SET_FD), so the kernel, not an earlier lstat walk, refuses a symlink, and a path
 * swapped after the open cannot redirect the attach. Real loop devices; each one made is detached.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attachLoopBeneath } from '../../src/host/priv/loop.js';
import { attachLoopFd, openBeneath } from '../../src/host/priv/open-beneath.js';

const root = mkdtempSync(join(tmpdir(), 'bgr-ob-'));
const state = join(root, 'state');
const outside = join(root, 'outside');
mkdirSync(join(state, 'vms', 'a'), { recursive: true });
mkdirSync(outside);
writeFileSync(join(state, 'vms', 'a', 'disk.img'), Buffer.alloc(1024 * 1024, 1));
writeFileSync(join(outside, 'secret.img'), Buffer.alloc(1024 * 1024, 2));
const attached: string[] = [];

afterAll(() => {
  for (const dev of attached) execFileSync('losetup', ['-d', dev]);
  const left = execFileSync('losetup', ['-J', '-l'], { encoding: 'utf8' });
  rmSync(root, { recursive: true, force: true });
  expect(left).not.toContain(root);
});

const backing = (dev: string) =>
  execFileSync('cat', [`/sys/block/${dev.slice(5)}/loop/backing_file`], { encoding: 'utf8' }).trim();

describe('openBeneath / attachLoopBeneath', () => {
  it('attaches over a file in the state dir and reports the backing file as the kernel has it', () => {
    const file = join(state, 'vms', 'a', 'disk.img');
    const { device, backingFile } = attachLoopBeneath(state, file, true);
    attached.push(device);
    expect(device).toMatch(/^\/dev\/loop\d+$/);
    expect(backingFile).toBe(file);
    expect(backing(device)).toBe(file);
    const ro = execFileSync('cat', [`/sys/block/${device.slice(5)}/ro`], { encoding: 'utf8' }).trim();
    expect(ro).toBe('1');
  });

  it('is refused by the kernel for a symlink in any component, a way out, or a non-regular file', () => {
    symlinkSync(outside, join(state, 'via-dir'));
    symlinkSync(join(outside, 'secret.img'), join(state, 'via-file.img'));
    symlinkSync(join(state, 'vms'), join(state, 'inside-link')); // even pointing back inside
    for (const path of [
      join(state, 'via-dir', 'secret.img'),
      join(state, 'via-file.img'),
      join(state, 'inside-link', 'a', 'disk.img'),
    ]) {
      expect(() => openBeneath(state, path, true), path).toThrow(/a symlink or a way out of the state dir/);
    }
    // A path that climbs out lexically (no lstat walk in front here: the kernel refuses it).
    expect(() => openBeneath(state, join(outside, 'secret.img'), true)).toThrow(/a way out of the state dir/);
    execFileSync('mkfifo', [join(state, 'fifo.img')]);
    expect(() => openBeneath(state, join(state, 'fifo.img'), true)).toThrow(/not a regular file/);
    expect(() => openBeneath(state, join(state, 'vms'), true)).toThrow(/not a regular file|EISDIR|errno 21/);
    expect(() => openBeneath(state, join(state, 'nope.img'), true)).toThrow(/no file/);
  });

  it('keeps the opened file when its directory is swapped for a symlink before the attach', () => {
    const dir = join(state, 'vms', 'b');
    mkdirSync(dir);
    const file = join(dir, 'root.img');
    writeFileSync(file, Buffer.alloc(1024 * 1024, 3));
    const ino = statSync(file).ino;
    const fd = openBeneath(state, file, false);
    try {
      // The hostile owner swaps the directory for a symlink to a tree holding another root.img.
      renameSync(dir, join(state, 'vms', 'b-moved'));
      writeFileSync(join(outside, 'root.img'), Buffer.alloc(1024 * 1024, 4));
      symlinkSync(outside, dir);
      const device = attachLoopFd(fd, false);
      attached.push(device);
      expect(fstatSync(fd).ino).toBe(ino);
      // The kernel backs the device with the file that was opened, not what the path names now.
      expect(backing(device)).toBe(join(state, 'vms', 'b-moved', 'root.img'));
      expect(statSync(join(state, 'vms', 'b-moved', 'root.img')).ino).toBe(ino);
    } finally {
      closeSync(fd);
    }
  });
});
