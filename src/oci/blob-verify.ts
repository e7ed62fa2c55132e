import { BangerError, operationFailed } from '../model/errors.js';
import type { VerifyExpectation } from '../model/verify-stream.js';

/** The hex of a `sha256:<hex>` digest; refuses any other algorithm or spelling. */
export function sha256Hex(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m?.[1]) throw new BangerError('bad_request', `not a sha256 digest: ${digest}`);
  return m[1];
}

/**
 * What a blob must be, in the registry's words: its manifest declares the size and digest, so every
 * failure names the blob (`what`) against them.
 */
export function blobExpectation(what: string, blob: { digest: string; size: number }): VerifyExpectation {
  return {
    sha256: sha256Hex(blob.digest),
    size: blob.size,
    failures: {
      tooLarge: (size) => operationFailed(`${what} is larger than the ${size} bytes its manifest declares`),
      truncated: (got, size) => operationFailed(`${what} is truncated: got ${got} of ${size} bytes`),
      mismatch: (actual) => operationFailed(`${what} has digest sha256:${actual}, expected ${blob.digest}`),
    },
  };
}
