import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { operationFailed } from '../model/errors.js';

/**
 * Counts and hashes bytes as they pass and fails at the end of the stream (or as soon as it runs long)
 * on any size or digest mismatch, so nothing downstream can mistake a bad blob for a good one.
 */
export function verifyingStream(opts: {
  digest: string;
  size: number;
  what: string;
  onBytes?: (done: number) => void;
  /** Runs before the error is raised (the cache removes a corrupt file first, so no reader sees it). */
  onMismatch?: () => Promise<void>;
}): Transform {
  const fail = (cb: TransformCallback, message: string) => {
    const err = operationFailed(message);
    if (!opts.onMismatch) return cb(err);
    opts.onMismatch().then(
      () => cb(err),
      () => cb(err),
    );
  };
  const hash = createHash('sha256');
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      done += chunk.length;
      if (done > opts.size) {
        fail(cb, `${opts.what} is larger than the ${opts.size} bytes its manifest declares`);
        return;
      }
      hash.update(chunk);
      opts.onBytes?.(done);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (done !== opts.size) {
        fail(cb, `${opts.what} is truncated: got ${done} of ${opts.size} bytes`);
        return;
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== opts.digest) {
        fail(cb, `${opts.what} has digest ${actual}, expected ${opts.digest}`);
        return;
      }
      cb();
    },
  });
}
