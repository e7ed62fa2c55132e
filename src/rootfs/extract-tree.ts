import { constants } from 'node:fs';
import { chmod, chown, lchown, lutimes, mkdir, open, symlink, utimes } from 'node:fs/promises';
import type { Ext4Image, Inode } from '../ext4/index.js';

/** Caps on what one extraction may write; each breach refuses the image with its own message. */
export interface ExtractLimits {
  /** Sum of the regular files' sizes (each copy of a hardlinked file counts). */
  maxBytes: number;
  /** Entries of any kind, directories included. */
  maxEntries: number;
  /** Directory levels below the extracted one. */
  maxDepth: number;
}

/**
 * Every file is created by this walk: O_EXCL fails on any name already there, O_NOFOLLOW on a symlink
 * there, so data only ever lands in an inode made in this run, under a directory made in this run.
 */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const SLASH = 0x2f;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** Copies the tree under `top` (a directory inode) into `dest` (a directory this run just made). */
export async function copyTree(
  img: Ext4Image,
  top: Inode,
  dest: Buffer,
  limits: ExtractLimits,
): Promise<void> {
  const seen = new Set<number>([top.ino]);
  let entries = 0;
  let bytes = 0;

  const copyDir = async (dir: Inode, hostDir: Buffer, depth: number): Promise<void> => {
    const names = new Set<string>();
    for (const e of await img.readDir(dir)) {
      if (e.name.equals(DOT) || e.name.equals(DOTDOT)) continue;
      const shown = JSON.stringify(e.name.toString());
      if (e.name.length === 0 || e.name.includes(SLASH) || e.name.includes(0))
        throw img.refuse(`directory inode ${dir.ino} has an entry named ${shown}`);
      // A second entry of one name would make the second create land on the first's inode (the debugfs
      // rdump attack: a symlink, then a file of the same name written through it).
      const key = e.name.toString('latin1');
      if (names.has(key)) throw img.refuse(`directory inode ${dir.ino} has two entries named ${shown}`);
      names.add(key);
      if (++entries > limits.maxEntries)
        throw img.refuse(`it has more than ${limits.maxEntries} entries to copy`);
      if (e.ino !== 2 && e.ino < img.sb.firstIno) throw img.refuse(`${shown} names reserved inode ${e.ino}`);
      const child = await img.inode(e.ino);
      const path = Buffer.concat([hostDir, Buffer.from('/'), e.name]);
      if (child.kind === 'directory') {
        // A directory reached twice (a hard-linked directory, an entry naming an ancestor) is a loop.
        if (seen.has(child.ino)) throw img.refuse(`directory inode ${child.ino} is reached twice (${shown})`);
        seen.add(child.ino);
        if (depth + 1 > limits.maxDepth)
          throw img.refuse(`it nests deeper than ${limits.maxDepth} directories`);
        await mkdir(path, { mode: 0o700 });
        await copyDir(child, path, depth + 1);
        await applyDirMeta(path, child);
      } else if (child.kind === 'regular') {
        bytes += child.size;
        if (bytes > limits.maxBytes) throw img.refuse(`its files hold more than ${limits.maxBytes} bytes`);
        await copyFile(img, child, path);
      } else if (child.kind === 'symlink') {
        const target = await img.readSymlink(child);
        if (target.includes(0)) throw img.refuse(`symlink ${shown} has a NUL in its target`);
        // The target is kept verbatim and never resolved on the host.
        await symlink(target, path);
        await ignoreEperm(lchown(path, child.uid, child.gid));
        await lutimes(path, child.atime, child.mtime);
      }
      // Devices, FIFOs and sockets are not made: a device node created by root on the host is a way into
      // the host's devices, and debugfs rdump, which this replaces, skipped them too.
    }
  };

  await copyDir(top, dest, 0);
  await applyDirMeta(dest, top);
}

async function copyFile(img: Ext4Image, file: Inode, path: Buffer): Promise<void> {
  const out = await open(path, CREATE_FLAGS, 0o600);
  try {
    await img.copyFile(file, out);
    // Owner before mode: chown clears setuid and setgid.
    await ignoreEperm(out.chown(file.uid, file.gid));
    await out.chmod(file.perm);
    await out.utimes(file.atime, file.mtime);
  } finally {
    await out.close();
  }
}

/** Set once the directory is filled: a read-only mode set first would stop a non-root daemon writing in it. */
async function applyDirMeta(path: Buffer, dir: Inode): Promise<void> {
  await ignoreEperm(chown(path, dir.uid, dir.gid));
  await chmod(path, dir.perm);
  await utimes(path, dir.atime, dir.mtime);
}

/** A daemon that is not root cannot give files away; it keeps them as its own, as debugfs rdump did. */
async function ignoreEperm(op: Promise<void>): Promise<void> {
  await op.catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPERM') throw err;
  });
}
