import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { operationFailed } from './errors.js';
import { type ProgressSink, silentProgress } from './progress.js';

export interface VerifyStreamOptions {
  /** What the bytes are, for messages, e.g. `image bundle`. */
  what: string;
  /** Where the bytes come from (a URL or a file), for messages and progress. */
  origin: string;
  /** The expected sha256 (hex) and size, as a catalog pins them. */
  sha256: string;
  sizeBytes: number;
  /** A hint for a stream that ends short. */
  truncatedHint?: string;
  progress?: ProgressSink;
}

/**
 * Counts and hashes bytes as they pass (reporting download progress); fails at end of stream on a size or
 * digest mismatch, so nothing downstream trusts a bad download.
 */
export function sha256Verifier(o: VerifyStreamOptions): Transform {
  const hash = createHash('sha256');
  let done = 0;
  const progress = o.progress ?? silentProgress;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      done += chunk.length;
      if (done > o.sizeBytes) {
        cb(operationFailed(`${o.what} ${o.origin} is larger than the catalog's ${o.sizeBytes} bytes`));
        return;
      }
      hash.update(chunk);
      progress({ kind: 'bytes', stage: 'download', item: o.origin, done, total: o.sizeBytes });
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (done !== o.sizeBytes) {
        cb(
          operationFailed(
            `${o.what} ${o.origin} is truncated: got ${done} of ${o.sizeBytes} bytes`,
            o.truncatedHint ? { hint: o.truncatedHint } : undefined,
          ),
        );
        return;
      }
      const actual = hash.digest('hex');
      if (actual !== o.sha256) {
        cb(
          operationFailed(`${o.what} ${o.origin} has sha256 ${actual}, the catalog says ${o.sha256}`, {
            hint: 'the download is corrupt or the catalog is stale; nothing was installed',
          }),
        );
        return;
      }
      cb();
    },
  });
}
