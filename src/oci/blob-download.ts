import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BangerError, operationFailed } from '../model/errors.js';

/**
 * Opens a blob's bytes from `offset` on (an HTTP Range request). `offset` in the answer is where the
 * stream really starts: 0 when the server ignored the range and sent the whole blob.
 */
export type BlobFetch = (signal: AbortSignal, offset: number) => Promise<{ body: Readable; offset: number }>;

/** Resumes after a broken stream this many times before giving up. */
const RESUMES = 2;
const RESUME_BACKOFF_MS = 200;
/** Bytes buffered ahead of the disk; queued chunks are written together. */
const WRITE_BUFFER = 1024 * 1024;

/**
 * Streams a blob into an open, empty file, hashing exactly the bytes that reach the file, so a resumed
 * download continues the same hash from where the file ends. A broken connection resumes with Range;
 * a clean end short of the size, an overlong body or a digest mismatch fails at once. The caller renames
 * the file into the cache only when this resolves.
 */
export async function downloadBlob(opts: {
  fh: FileHandle;
  digest: string;
  size: number;
  fetch: BlobFetch;
  signal: AbortSignal;
  onBytes?: (done: number) => void;
}): Promise<void> {
  const what = `blob ${opts.digest}`;
  let hash: Hash = createHash('sha256');
  let done = 0;
  for (let attempt = 0; ; attempt++) {
    const { body, offset } = await opts.fetch(opts.signal, done);
    if (offset !== done) {
      // The server sent the whole blob again: start the file and the hash over.
      hash = createHash('sha256');
      done = 0;
      await opts.fh.truncate(0);
    }
    // The write in flight when the stream breaks must land (and count) before a resume asks for more.
    let inFlight: Promise<unknown> = Promise.resolve();
    const put = (chunk: Buffer, cb: (err?: Error | null) => void) => {
      if (done + chunk.length > opts.size) {
        cb(operationFailed(`${what} is larger than the ${opts.size} bytes its manifest declares`));
        return;
      }
      inFlight = opts.fh.write(chunk, 0, chunk.length, done).then(() => {
        hash.update(chunk);
        done += chunk.length;
        opts.onBytes?.(done);
      });
      inFlight.then(() => cb(), cb);
    };
    const sink = new Writable({
      // Chunks that queue up while a write is in flight go to disk as one write.
      highWaterMark: WRITE_BUFFER,
      write: (chunk: Buffer, _enc, cb) => put(chunk, cb),
      writev: (chunks, cb) => put(Buffer.concat(chunks.map((c) => c.chunk as Buffer)), cb),
    });
    try {
      await pipeline(body, sink, { signal: opts.signal });
      break;
    } catch (err) {
      await inFlight.catch(() => {});
      // Our own verdicts and cancellation are final; a broken connection is worth a Range retry.
      if (err instanceof BangerError || opts.signal.aborted || attempt >= RESUMES) throw err;
      await new Promise((r) => setTimeout(r, RESUME_BACKOFF_MS * 2 ** attempt));
    }
  }
  if (done !== opts.size) throw operationFailed(`${what} is truncated: got ${done} of ${opts.size} bytes`);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== opts.digest) throw operationFailed(`${what} has digest ${actual}, expected ${opts.digest}`);
  await opts.fh.sync();
}
