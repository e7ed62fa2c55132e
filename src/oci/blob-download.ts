import type { FileHandle } from 'node:fs/promises';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BangerError } from '../model/errors.js';
import { Sha256Verifier } from '../model/verify-stream.js';
import { blobExpectation } from './blob-verify.js';

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

/** Reads back the first `length` bytes of the file: the part a resumed download already holds. */
async function* onDisk(fh: FileHandle, length: number): AsyncGenerator<Buffer> {
  const buf = Buffer.alloc(Math.min(WRITE_BUFFER, length));
  for (let pos = 0; pos < length; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (bytesRead === 0) break;
    yield Buffer.from(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/**
 * Streams a blob into an open, empty file, counting and hashing exactly the bytes that reach the file. A
 * broken connection resumes with Range: the verifier starts over from the bytes on disk (read back, not
 * trusted from memory), so the verdict is about the file the cache will rename. A clean end short of the
 * size, an overlong body or a digest mismatch fails at once. The caller renames the file into the cache
 * only when this resolves.
 */
export async function downloadBlob(opts: {
  fh: FileHandle;
  digest: string;
  size: number;
  fetch: BlobFetch;
  signal: AbortSignal;
  onBytes?: (done: number) => void;
}): Promise<void> {
  const expected = blobExpectation(`blob ${opts.digest}`, opts);
  let verifier = new Sha256Verifier(expected);
  for (let attempt = 0; ; attempt++) {
    const { body, offset } = await opts.fetch(opts.signal, verifier.done);
    if (offset !== verifier.done) {
      // The server sent the whole blob again: start the file and the hash over.
      verifier = new Sha256Verifier(expected);
      await opts.fh.truncate(0);
    }
    const v = verifier;
    // The write in flight when the stream breaks must land before a resume reads the file back.
    let inFlight: Promise<unknown> = Promise.resolve();
    const put = (chunk: Buffer, cb: (err?: Error | null) => void) => {
      const at = v.done;
      const tooLarge = v.update(chunk);
      if (tooLarge) {
        cb(tooLarge);
        return;
      }
      inFlight = opts.fh.write(chunk, 0, chunk.length, at).then(() => opts.onBytes?.(v.done));
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
      // What reached the disk is the truth: a write that failed, or landed short, is not counted twice.
      const held = (await opts.fh.stat()).size;
      verifier = new Sha256Verifier(expected);
      await verifier.absorb(onDisk(opts.fh, Math.min(held, v.done)));
    }
  }
  const verdict = verifier.finish();
  if (verdict) throw verdict;
  await opts.fh.sync();
}
