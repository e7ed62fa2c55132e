import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import type { Compression } from './types.js';

/**
 * zstd's default refuses frames with windows over 128 MiB; images compressed with `--long` need more.
 * 2^31 is zstd's own maximum and caps the decoder's memory at 2 GiB.
 */
const ZSTD_WINDOW_LOG_MAX = 31;

/** zlib's output pieces: its 16 KiB default costs one callback (and one tar-parser step) per 16 KiB. */
const GUNZIP_CHUNK = 256 * 1024;

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Compression detected from the first bytes; media types lie often enough that magic decides. */
export function detectCompression(head: Buffer): Compression {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return 'gzip';
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/** Peeks at the layer's first bytes and returns the plain tar stream behind whatever compression it has. */
export async function decompressLayer(
  source: Readable,
): Promise<{ tar: Readable; compression: Compression }> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 4) {
    const next = await it.next();
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
    headLen += next.value.length;
  }
  const first = Buffer.concat(head);
  const compression = detectCompression(first);
  const replay = ReadableStream.from(
    (async function* () {
      if (first.length > 0) yield first;
      if (ended) return;
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        yield next.value;
      }
    })(),
    { objectMode: false },
  );
  if (compression === 'none') return { tar: replay, compression };
  const decoder =
    compression === 'gzip'
      ? createGunzip({ chunkSize: GUNZIP_CHUNK })
      : new DecompressStream({ windowLogMax: ZSTD_WINDOW_LOG_MAX });
  replay.on('error', (err) => decoder.destroy(err));
  decoder.on('close', () => replay.destroy());
  return { tar: replay.pipe(decoder), compression };
}
