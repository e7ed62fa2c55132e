import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Mutex } from 'async-mutex';
import { BangerError, operationFailed } from '../model/errors.js';
import { verifyingStream } from '../model/verify-stream.js';
import { type BlobFetch, downloadBlob } from './blob-download.js';
import { blobExpectation, sha256Hex } from './blob-verify.js';

export interface BlobDescriptor {
  digest: string;
  size: number;
}

export interface EnsureOptions {
  /** Bytes received so far for this blob (also called once with the full size on a cache hit). */
  onBytes?: (done: number) => void;
  signal?: AbortSignal;
}

/**
 * The content-addressed blob store: `<root>/blobs/sha256/<hex>`. A blob lands there only by rename of a
 * temp file whose size and sha256 were checked while it streamed in, so a partial, empty or wrong blob
 * can never be served. Concurrent requests for one digest share one download. Pins keep blobs that a
 * pull is using safe from prune.
 */
export interface BlobCache {
  readonly root: string;
  path(digest: string): string;
  /** Makes sure the blob is cached, fetching it with `fetch` when it is not. */
  ensure(blob: BlobDescriptor, fetch: BlobFetch, opts?: EnsureOptions): Promise<void>;
  /** A stream of a cached blob, re-verified as it is read; a corrupt file is removed and the read fails. */
  open(blob: BlobDescriptor): Readable;
  /** Protects blobs from prune until the returned function is called. */
  pin(digests: readonly string[]): Promise<() => void>;
  size(): Promise<number>;
  prune(opts?: { dryRun?: boolean }): Promise<{ removed: number; bytes: number }>;
}

interface Download {
  promise: Promise<void>;
  listeners: Set<(done: number) => void>;
  waiters: number;
  controller: AbortController;
}

async function fsyncPath(path: string, flags: string): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function cancelled(reason?: unknown): BangerError {
  return new BangerError('cancelled', 'pull cancelled', { cause: reason });
}

export function createBlobCache(root: string): BlobCache {
  const blobsDir = join(root, 'blobs', 'sha256');
  const tmpDir = join(root, 'tmp');
  const downloads = new Map<string, Download>();
  const activeTmp = new Set<string>();
  const pins = new Map<string, number>();
  // Prune and pin exclude each other, so a blob pinned (and then found present) is never unlinked after.
  const pruneLock = new Mutex();

  const pathOf = (digest: string) => join(blobsDir, sha256Hex(digest));

  async function present(blob: BlobDescriptor): Promise<boolean> {
    const st = await stat(pathOf(blob.digest)).catch(() => undefined);
    if (!st) return false;
    if (st.size === blob.size) return true;
    // A wrong-sized file was not written by us (we rename only verified blobs): drop it and refetch.
    await rm(pathOf(blob.digest), { force: true });
    return false;
  }

  async function download(blob: BlobDescriptor, fetch: BlobFetch, dl: Download): Promise<void> {
    await mkdir(blobsDir, { recursive: true });
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${sha256Hex(blob.digest)}.${randomBytes(6).toString('hex')}.partial`);
    activeTmp.add(tmp);
    // Opened before any byte arrives and held: a lazily opened stream could create the file after a
    // fast failure had already cleaned up.
    // Read and write: a resumed download reads back what it holds to re-hash it.
    const fh = await open(tmp, 'wx+', 0o644);
    try {
      try {
        await downloadBlob({
          fh,
          digest: blob.digest,
          size: blob.size,
          fetch,
          signal: dl.controller.signal,
          onBytes: (done) => {
            for (const l of dl.listeners) l(done);
          },
        });
      } finally {
        await fh.close();
      }
      await rename(tmp, pathOf(blob.digest));
      await fsyncPath(blobsDir, 'r');
    } catch (err) {
      if (dl.controller.signal.aborted) throw cancelled(err);
      throw err instanceof BangerError
        ? err
        : operationFailed(`download of blob ${blob.digest} failed: ${String(err)}`, { cause: err });
    } finally {
      activeTmp.delete(tmp);
      await rm(tmp, { force: true });
    }
  }

  return {
    root,
    path: pathOf,

    async ensure(blob, fetch, opts = {}) {
      if (opts.signal?.aborted) throw cancelled(opts.signal.reason);
      const key = sha256Hex(blob.digest);
      let dl = downloads.get(key);
      if (!dl) {
        if (await present(blob)) {
          opts.onBytes?.(blob.size);
          return;
        }
        dl = downloads.get(key); // another caller may have started while we looked
      }
      if (!dl) {
        const fresh: Download = {
          promise: Promise.resolve(),
          listeners: new Set(),
          waiters: 0,
          controller: new AbortController(),
        };
        fresh.promise = download(blob, fetch, fresh).finally(() => downloads.delete(key));
        fresh.promise.catch(() => {}); // each waiter sees the error through its own await
        downloads.set(key, fresh);
        dl = fresh;
      }
      const shared = dl;
      const listener = opts.onBytes;
      if (listener) shared.listeners.add(listener);
      shared.waiters++;
      // Each caller may cancel alone; the shared download stops only when nobody waits for it any more.
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => {
          reject(cancelled(opts.signal?.reason));
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
      });
      try {
        await Promise.race([shared.promise, aborted]);
      } finally {
        if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
        if (listener) shared.listeners.delete(listener);
        shared.waiters--;
        if (shared.waiters === 0 && opts.signal?.aborted) {
          // The last waiter left: stop the download and return only once its temp file is gone.
          shared.controller.abort(opts.signal.reason);
          await shared.promise.catch(() => {});
        }
        aborted.catch(() => {});
      }
    },

    open(blob) {
      const file = pathOf(blob.digest);
      const verify = verifyingStream({
        ...blobExpectation(`cached blob ${blob.digest}`, blob),
        // Corrupt on disk (bit rot, a meddling hand): remove it so the next pull fetches it again.
        beforeFail: () => rm(file, { force: true }),
      });
      const source = createReadStream(file);
      source.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT')
          verify.destroy(
            new BangerError('not_found', `blob ${blob.digest} is no longer in the cache`, {
              hint: 'it was pruned after its image was released; pull the image again',
            }),
          );
      });
      // Other errors reach the reader through `verify`, which pipeline destroys with them.
      pipeline(source, verify).catch(() => {});
      return verify;
    },

    async pin(digests) {
      return pruneLock.runExclusive(() => {
        for (const d of digests) pins.set(d, (pins.get(d) ?? 0) + 1);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          for (const d of digests) {
            const n = (pins.get(d) ?? 1) - 1;
            if (n <= 0) pins.delete(d);
            else pins.set(d, n);
          }
        };
      });
    },

    async size() {
      let total = 0;
      for (const dir of [blobsDir, tmpDir]) {
        for (const name of await readdir(dir).catch(() => [] as string[])) {
          const st = await stat(join(dir, name)).catch(() => undefined);
          if (st?.isFile()) total += st.size;
        }
      }
      return total;
    },

    async prune(opts = {}) {
      return pruneLock.runExclusive(async () => {
        let removed = 0;
        let bytes = 0;
        for (const name of await readdir(blobsDir).catch(() => [] as string[])) {
          if (pins.has(`sha256:${name}`) || downloads.has(name)) continue;
          const file = join(blobsDir, name);
          const st = await stat(file).catch(() => undefined);
          if (!st?.isFile()) continue;
          if (!opts.dryRun) await rm(file, { force: true });
          removed++;
          bytes += st.size;
        }
        // Temp files of downloads that are not running here were left by a crash.
        for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
          const file = join(tmpDir, name);
          if (activeTmp.has(file)) continue;
          const st = await stat(file).catch(() => undefined);
          if (!st) continue;
          if (!opts.dryRun) await rm(file, { force: true });
          bytes += st.size;
        }
        return { removed, bytes };
      });
    },
  };
}
