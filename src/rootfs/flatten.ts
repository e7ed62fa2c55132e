import type { Readable } from 'node:stream';
import { PassThrough, pipeline as pipelineCb, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { BangerError, badRequest } from '../model/errors.js';
import type { LayerSource } from '../model/layer.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { decompressLayer } from './decompress.js';
import { applyEntry, LIMIT_HINT } from './entry.js';
import { installRawPaxXattrs } from './pax-xattrs.js';
import type { FlatTree } from './tree.js';
import type { Compression, FidelityReport, RootfsLimits } from './types.js';

/** Progress at most once per this many compressed bytes, so a big layer is not thousands of events. */
const PROGRESS_STEP = 4 * 1024 * 1024;

/**
 * How much of the next layer is decompressed ahead while the current one is written (bytes of tar held in
 * memory). zlib and zstd run on libuv's thread pool, so the read-ahead uses the second core when the writer
 * leaves it idle; `npm run bench layer-readahead` measures it against none (0).
 */
export const READ_AHEAD_BYTES = 16 * 1024 * 1024;

export interface FlattenStats {
  layers: FidelityReport['layers'];
  whiteouts: { files: number; opaqueDirs: number };
  dropped: { path: string; reason: string }[];
  adjusted: { path: string; what: string }[];
  contentBytes: number;
  entries: number;
}

export interface FlattenOptions {
  layers: readonly LayerSource[];
  tree: FlatTree;
  limits: RootfsLimits;
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** Tar bytes of the next layer decompressed ahead; READ_AHEAD_BYTES unless given (0: none). */
  readAheadBytes?: number;
}

/** Replays the layers oldest first into the tree (file data into the image being written), applying whiteouts. */
export async function flattenLayers(options: FlattenOptions): Promise<FlattenStats> {
  installRawPaxXattrs();
  const { layers, limits } = options;
  if (layers.length > limits.maxLayers) {
    throw badRequest(`the image has ${layers.length} layers; the limit is ${limits.maxLayers}`);
  }
  const stats: FlattenStats = {
    layers: [],
    whiteouts: { files: 0, opaqueDirs: 0 },
    dropped: [],
    adjusted: [],
    contentBytes: 0,
    entries: 0,
  };
  const readAhead = options.readAheadBytes ?? READ_AHEAD_BYTES;
  let next: Promise<OpenedLayer> | undefined;
  try {
    for (const [index, layer] of layers.entries()) {
      options.signal?.throwIfAborted();
      const opened = next ?? openLayer(layer, index, options, 0);
      next = undefined;
      const following = layers[index + 1];
      // Opened only once this layer has opened, so a bad layer fails in order and alone.
      if (readAhead > 0 && following) {
        next = opened.then(() => openLayer(following, index + 1, options, readAhead));
        next.catch(() => {});
      }
      await flattenOne(await opened, index, options, stats);
    }
  } finally {
    // A layer that failed leaves the one read ahead open: close it.
    if (next)
      void next.then(
        (o) => o.close(),
        () => {},
      );
  }
  return stats;
}

/** A layer's decompressed tar stream, opened (and perhaps being read ahead), with what reports on it. */
interface OpenedLayer {
  label: string;
  digest: string | undefined;
  /** The compressed size, when the source knows it (for progress). */
  size: number | undefined;
  compression: Compression;
  tar: Readable;
  compressed: Transform & { total: number };
  close(): void;
}

/**
 * Opens a layer and starts decompressing it. With `readAhead` > 0 the tar stream is buffered up to that
 * many bytes, so decompression runs ahead of the consumer; an error then waits in the stream for it.
 */
async function openLayer(
  layer: LayerSource,
  index: number,
  options: FlattenOptions,
  readAhead: number,
): Promise<OpenedLayer> {
  const progress = options.progress ?? silentProgress;
  const label = layer.digest ?? `layer ${index + 1}`;
  const source = await layer.open();
  const onAbort = () => source.destroy(cancelled(options.signal));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const close = () => {
    options.signal?.removeEventListener('abort', onAbort);
    source.destroy();
  };
  let lastReport = 0;
  const compressed = counter(Number.MAX_SAFE_INTEGER, (done) => {
    if (done - lastReport < PROGRESS_STEP) return;
    lastReport = done;
    progress({ kind: 'bytes', stage: 'flatten', item: label, done, total: layer.size });
  });
  const counted = pipelineCb(source, compressed, () => {});
  try {
    const decoded = await decompressLayer(counted);
    let tar = decoded.tar;
    if (readAhead > 0) {
      const buffer = new PassThrough({ readableHighWaterMark: readAhead });
      tar = pipelineCb(decoded.tar, buffer, () => {});
    }
    return {
      label,
      digest: layer.digest,
      size: layer.size,
      compression: decoded.compression,
      tar,
      compressed,
      close,
    };
  } catch (err) {
    close();
    throw layerError(err, label, options.signal);
  }
}

function cancelled(signal: AbortSignal | undefined): BangerError | undefined {
  return signal?.aborted ? new BangerError('cancelled', 'rootfs build was cancelled') : undefined;
}

/** Counts bytes as they pass and refuses to pass more than `max` (a decompression bomb). */
function counter(max: number, onBytes: (total: number) => void): Transform & { total: number } {
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      t.total += chunk.length;
      if (t.total > max) {
        cb(badRequest(`a layer decompresses to more than ${max} bytes`, { hint: LIMIT_HINT }));
        return;
      }
      onBytes(t.total);
      cb(null, chunk);
    },
  }) as Transform & { total: number };
  t.total = 0;
  return t;
}

async function flattenOne(
  opened: OpenedLayer,
  index: number,
  options: FlattenOptions,
  stats: FlattenStats,
): Promise<void> {
  const progress = options.progress ?? silentProgress;
  const { label, compressed, compression } = opened;
  // A layer's tar is its content plus headers; entries cap the header overhead.
  const maxTar = options.limits.maxUnpackedBytes + options.limits.maxEntries * 1536 + 1024 * 1024;
  const plain = counter(maxTar, () => {});
  const extract = tarStream.extract();
  let last: { offset: number; size: number } | undefined;
  let entries = 0;
  try {
    const feeding = pipeline(opened.tar, plain, extract);
    feeding.catch(() => {});
    let tolerated = false;
    // umoci writes layers whose last file lacks its padding and the end-of-archive blocks (umoci#436);
    // Go's archive/tar reads them, so do we, but only when the last entry's data is complete.
    const tolerable = (err: unknown) =>
      err instanceof Error &&
      err.message === 'Unexpected end of data' &&
      last !== undefined &&
      plain.total === last.offset + last.size;
    try {
      for await (const entry of extract) {
        const err = cancelled(options.signal);
        if (err) throw err;
        entries++;
        if (++stats.entries > options.limits.maxEntries) {
          throw badRequest(`the image has more than ${options.limits.maxEntries} entries`, {
            hint: LIMIT_HINT,
          });
        }
        const header = entry.header as tarStream.Header & { byteOffset?: number };
        last = { offset: header.byteOffset ?? 0, size: header.size ?? 0 };
        await applyEntry(entry as unknown as Readable, header, index, options, stats);
      }
    } catch (err) {
      if (!tolerable(err)) throw err;
      tolerated = true;
    }
    try {
      await feeding;
    } catch (err) {
      if (!tolerable(err)) throw err;
      tolerated = true;
    }
    if (tolerated)
      stats.adjusted.push({ path: label, what: 'layer ends without tar padding/end blocks (tolerated)' });
  } catch (err) {
    throw layerError(err, label, options.signal);
  } finally {
    opened.close();
  }
  stats.layers.push({ digest: opened.digest, compression, entries, tarBytes: plain.total });
  progress({ kind: 'bytes', stage: 'flatten', item: label, done: compressed.total, total: opened.size });
}

function layerError(err: unknown, label: string, signal: AbortSignal | undefined): BangerError {
  const stop = cancelled(signal);
  if (stop) return stop;
  if (err instanceof BangerError) {
    if (err.message.includes(label)) return err;
    return new BangerError(err.code, `${label}: ${err.message}`, { hint: err.hint, cause: err });
  }
  const why = err instanceof Error ? err.message : String(err);
  return badRequest(`${label} is not a readable tar layer: ${why}`, {
    hint: 'the layer is corrupt or not a (gzip/zstd) tar; nothing was built',
    cause: err,
  });
}
