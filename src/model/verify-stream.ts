import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { type BangerError, operationFailed } from './errors.js';

/**
 * The errors a verifier raises, worded by its caller: a registry blob, a catalog bundle and a kernel
 * bundle each name their bytes and give their own hint, while the counting and hashing stay here.
 */
export interface VerifyFailures {
  /** More bytes arrived than `size` (raised as soon as they do, not at the end). */
  tooLarge(size: number): BangerError;
  /** The stream ended after `got` of `size` bytes. */
  truncated(got: number, size: number): BangerError;
  /** All bytes arrived and their sha256 (hex) is `actual`. */
  mismatch(actual: string): BangerError;
}

/**
 * The failures of a download pinned by a catalog entry (an image or kernel bundle), `label` naming it
 * (`image bundle <url>`): what went wrong, and that nothing was installed.
 */
export function catalogDownloadFailures(label: string, sha256: string): VerifyFailures {
  return {
    tooLarge: (size) => operationFailed(`${label} is larger than the catalog's ${size} bytes`),
    truncated: (got, size) =>
      operationFailed(`${label} is truncated: got ${got} of ${size} bytes`, {
        hint: 'retry the pull; if it persists the server or the catalog entry is wrong',
      }),
    mismatch: (actual) =>
      operationFailed(`${label} has sha256 ${actual}, the catalog says ${sha256}`, {
        hint: 'the download is corrupt or the catalog is stale; nothing was installed',
      }),
  };
}

export interface VerifyExpectation {
  /** The expected sha256, hex. */
  sha256: string;
  size: number;
  failures: VerifyFailures;
}

/**
 * Counts and hashes bytes as they pass and judges them against a pinned size and sha256: the one check
 * behind every verified download (registry blobs, image and kernel bundles) and every cached-blob read.
 * A caller that writes the bytes itself (a resumable download) feeds it directly; the others pipe
 * through verifyingStream.
 */
export class Sha256Verifier {
  private readonly expected: VerifyExpectation;
  private readonly hash: Hash = createHash('sha256');
  private count = 0;

  constructor(expected: VerifyExpectation) {
    this.expected = expected;
  }

  /** Bytes taken so far. */
  get done(): number {
    return this.count;
  }

  /** Takes the next bytes; the error when they run past the size (nothing of them is taken then). */
  update(chunk: Buffer): BangerError | undefined {
    if (this.count + chunk.length > this.expected.size)
      return this.expected.failures.tooLarge(this.expected.size);
    this.hash.update(chunk);
    this.count += chunk.length;
    return undefined;
  }

  /** Takes every byte of `source` (e.g. the part of a download already on disk), throwing on overrun. */
  async absorb(source: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of source) {
      const err = this.update(chunk);
      if (err) throw err;
    }
  }

  /** The verdict once no more bytes will come: undefined when size and digest both match. */
  finish(): BangerError | undefined {
    const { size, sha256, failures } = this.expected;
    if (this.count !== size) return failures.truncated(this.count, size);
    const actual = this.hash.digest('hex');
    return actual === sha256 ? undefined : failures.mismatch(actual);
  }
}

export interface VerifyStreamOptions extends VerifyExpectation {
  /** Bytes passed so far, after each chunk. */
  onBytes?: (done: number) => void;
  /** Runs before a failure is raised (the blob cache removes a corrupt file first, so no reader sees it). */
  beforeFail?: () => Promise<void>;
}

/**
 * Sha256Verifier as a pass-through stream: fails as soon as the bytes run long and at end of stream on a
 * short count or a digest mismatch, so nothing downstream mistakes bad bytes for good ones.
 */
export function verifyingStream(o: VerifyStreamOptions): Transform {
  const verifier = new Sha256Verifier(o);
  const fail = (cb: TransformCallback, err: BangerError) => {
    if (!o.beforeFail) return cb(err);
    o.beforeFail().then(
      () => cb(err),
      () => cb(err),
    );
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const err = verifier.update(chunk);
      if (err) return fail(cb, err);
      o.onBytes?.(verifier.done);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const err = verifier.finish();
      if (err) return fail(cb, err);
      cb();
    },
  });
}
