import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { operationFailed } from '../model/errors.js';

/**
 * The staging tree on the host. Every write creates its last component exclusively and without following
 * symlinks (O_EXCL|O_NOFOLLOW, mkdir, symlink and link never follow it), and every directory is checked
 * with lstat when it is created, so a path can only ever lead through directories this class made.
 * Which parents exist is the caller's in-memory tree; the host is never asked to resolve a symlink.
 */
export class Staging {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  hostPath(parts: readonly string[]): string {
    return join(this.root, ...parts);
  }

  async mkdir(parts: readonly string[]): Promise<void> {
    const path = this.hostPath(parts);
    await mkdir(path, { mode: 0o700 });
    const st = await lstat(path);
    if (!st.isDirectory() || st.isSymbolicLink())
      throw operationFailed(`staging directory ${path} is not a directory after mkdir`);
  }

  /** Streams a regular file in; returns its size. */
  async writeFile(parts: readonly string[], data: Readable, mode: number, mtime: number): Promise<number> {
    const fh = await open(
      this.hostPath(parts),
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    let size = 0;
    try {
      for await (const chunk of data as AsyncIterable<Buffer>) {
        size += chunk.length;
        await fh.write(chunk);
      }
      await fh.chmod(mode);
      await fh.utimes(mtime, mtime);
    } finally {
      await fh.close();
    }
    return size;
  }

  async writeBytes(parts: readonly string[], data: Buffer, mode: number, mtime: number): Promise<void> {
    const fh = await open(
      this.hostPath(parts),
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.utimes(mtime, mtime);
    } finally {
      await fh.close();
    }
  }

  async symlink(parts: readonly string[], target: string, mtime: number): Promise<void> {
    const path = this.hostPath(parts);
    await symlink(target, path);
    await lutimes(path, mtime, mtime);
  }

  /** A hard link; link(2) does not follow a symlink at `from`, so linking to a symlink links the symlink. */
  async link(from: readonly string[], to: readonly string[]): Promise<void> {
    await link(this.hostPath(from), this.hostPath(to));
  }

  async remove(parts: readonly string[]): Promise<void> {
    await rm(this.hostPath(parts), { recursive: true, force: true });
  }

  async chown(parts: readonly string[], uid: number, gid: number): Promise<void> {
    await lchown(this.hostPath(parts), uid, gid);
  }
}

/** Final mode and times of a directory, set after its children were written (writing them moved mtime). */
export async function finishDir(staging: Staging, parts: readonly string[], mode: number, mtime: number) {
  const path = staging.hostPath(parts);
  await chmod(path, mode);
  await utimes(path, mtime, mtime);
}
