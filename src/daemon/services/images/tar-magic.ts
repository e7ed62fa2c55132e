import { PassThrough, type Readable } from 'node:stream';

export type Compression = 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'none';

/** Compression by magic bytes, never by file name (stdin has none, and names lie). */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/** Reads at least `bytes` (or to the end) and returns them with a stream that still yields everything. */
export async function peekStream(
  stream: Readable,
  bytes: number,
): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let have = 0;
  const iterator = stream[Symbol.asyncIterator]();
  while (have < bytes) {
    const next = await iterator.next();
    if (next.done) break;
    const chunk = Buffer.from(next.value as Buffer);
    chunks.push(chunk);
    have += chunk.length;
  }
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const head = Buffer.concat(chunks);
  // A consumer that gives up (destroy) must stop this pump too, or the source stays open forever.
  const closed = new Promise<void>((r) => out.once('close', r));
  void (async () => {
    try {
      out.write(head);
      for (;;) {
        if (out.destroyed) break;
        const next = await iterator.next();
        if (next.done) break;
        if (!out.write(next.value)) await Promise.race([new Promise((r) => out.once('drain', r)), closed]);
      }
      if (!out.destroyed) out.end();
    } catch (err) {
      out.destroy(err as Error);
    } finally {
      if (out.destroyed) await iterator.return?.();
    }
  })();
  return { head, stream: out };
}
