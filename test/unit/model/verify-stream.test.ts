import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { operationFailed } from '../../../src/model/errors.js';
import { Sha256Verifier, verifyingStream } from '../../../src/model/verify-stream.js';

const bytes = Buffer.from('the bytes a catalog pins');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const expectation = (size = bytes.length, sha256 = sha(bytes)) => ({
  sha256,
  size,
  failures: {
    tooLarge: (n: number) => operationFailed(`over ${n}`, { hint: 'too large hint' }),
    truncated: (got: number, n: number) => operationFailed(`short ${got}/${n}`),
    mismatch: (actual: string) => operationFailed(`digest ${actual}`),
  },
});

async function through(source: Buffer[], o: Parameters<typeof verifyingStream>[0]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(source),
    verifyingStream(o),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

describe('verifyingStream', () => {
  it('passes the bytes through unchanged and reports the running count', async () => {
    const seen: number[] = [];
    const out = await through([bytes.subarray(0, 5), bytes.subarray(5)], {
      ...expectation(),
      onBytes: (d) => seen.push(d),
    });
    expect(out).toEqual(bytes);
    expect(seen).toEqual([5, bytes.length]);
  });

  it("raises the caller's own errors: overlong at once, short and wrong digest at the end", async () => {
    await expect(through([bytes], expectation(4))).rejects.toMatchObject({
      message: 'over 4',
      hint: 'too large hint',
      code: 'operation_failed',
    });
    await expect(through([bytes], expectation(bytes.length + 1))).rejects.toThrow(
      `short ${bytes.length}/${bytes.length + 1}`,
    );
    await expect(through([bytes], expectation(bytes.length, '0'.repeat(64)))).rejects.toThrow(
      `digest ${sha(bytes)}`,
    );
  });

  it('runs beforeFail before the error reaches the reader, and only on failure', async () => {
    const order: string[] = [];
    const beforeFail = async () => {
      order.push('cleanup');
    };
    await through([bytes], { ...expectation(), beforeFail });
    expect(order).toEqual([]);
    await through([bytes], { ...expectation(bytes.length, '1'.repeat(64)), beforeFail }).catch(() =>
      order.push('error'),
    );
    expect(order).toEqual(['cleanup', 'error']);
  });
});

describe('Sha256Verifier', () => {
  it('takes no part of a chunk that runs past the size, so a resume can go on from where it stood', () => {
    const v = new Sha256Verifier(expectation());
    expect(v.update(bytes.subarray(0, 10))).toBeUndefined();
    expect(v.update(Buffer.concat([bytes.subarray(10), Buffer.from('x')]))?.message).toBe(
      `over ${bytes.length}`,
    );
    expect(v.done).toBe(10);
    expect(v.update(bytes.subarray(10))).toBeUndefined();
    expect(v.finish()).toBeUndefined();
  });

  it('absorbs a prefix (a resumed download re-reading its file) and continues the same hash', async () => {
    const v = new Sha256Verifier(expectation());
    await v.absorb(Readable.from([bytes.subarray(0, 7)]));
    expect(v.done).toBe(7);
    v.update(bytes.subarray(7));
    expect(v.finish()).toBeUndefined();
    const long = new Sha256Verifier(expectation(3));
    await expect(long.absorb(Readable.from([bytes]))).rejects.toThrow('over 3');
  });
});
