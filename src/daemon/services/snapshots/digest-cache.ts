import { stat } from 'node:fs/promises';
import { sha256File } from './files.js';

/**
 * Digests of snapshot files already read in full, so a second fork of an untouched snapshot does not
 * hash gigabytes again. An entry is trusted only while the file's (dev, inode, size, mtime, ctime) are
 * unchanged: a rewrite with mtime put back (utimes) still moves ctime, which no user can set.
 *
 * Timestamps are coarse (a kernel tick), so a write in the same tick as the stat that keyed an entry
 * could leave ctime unchanged (git's "racily clean" index). An entry is therefore kept only when the
 * file's ctime was already RACY_MS old when hashing began: a later write then gets a later ctime.
 */
export interface DigestCache {
  /** sha256 (hex) of the file's content: from the cache when its identity is unchanged, else read. */
  sha256(path: string): Promise<string>;
  /**
   * Hashes a file the daemon has just written into a snapshot's private (0700) temporary directory and keeps
   * the digest. The racy-ctime rule is not applied: no one but the daemon writes there, so the fork of a
   * running VM (snapshot, then verify) does not read again files it has just read. Kept only when the file's
   * identity is the same before and after the read; any later write moves ctime and drops it.
   */
  sha256Own(path: string): Promise<string>;
  /** The directory `from` was renamed to `to` (its files keep their identity): their entries follow. */
  moved(from: string, to: string): void;
}

const RACY_MS = 1000;

interface Entry {
  key: string;
  digest: string;
}

export function createDigestCache(hash: (path: string) => Promise<string> = sha256File): DigestCache {
  const entries = new Map<string, Entry>();
  const identity = async (path: string) => {
    const s = await stat(path, { bigint: true });
    return {
      key: [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(':'),
      ctimeMs: Number(s.ctimeNs / 1_000_000n),
    };
  };
  return {
    async sha256(path) {
      const before = await identity(path);
      const cached = entries.get(path);
      if (cached?.key === before.key) return cached.digest;
      entries.delete(path);
      const started = Date.now();
      const digest = await hash(path);
      const after = await identity(path);
      // Changed while read, or too fresh to tell a same-tick write apart: correct now, not cached.
      if (after.key === before.key && before.ctimeMs < started - RACY_MS)
        entries.set(path, { key: after.key, digest });
      return digest;
    },
    async sha256Own(path) {
      const before = await identity(path);
      const digest = await hash(path);
      const after = await identity(path);
      if (after.key === before.key) entries.set(path, { key: after.key, digest });
      else entries.delete(path);
      return digest;
    },
    moved(from, to) {
      for (const [path, entry] of [...entries]) {
        if (!path.startsWith(`${from}/`)) continue;
        entries.delete(path);
        entries.set(`${to}${path.slice(from.length)}`, entry);
      }
    },
  };
}
