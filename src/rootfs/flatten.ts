import type { Readable } from 'node:stream';
import { pipeline as pipelineCb, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { BangerError, badRequest } from '../model/errors.js';
import type { LayerSource } from '../model/layer.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { decompressLayer } from './decompress.js';
import { entryComponents } from './paths.js';
import { installRawPaxXattrs, xattrsOf } from './pax-xattrs.js';
import type { FlatTree, TreeNode } from './tree.js';
import type { Compression, EntryMeta, FidelityReport, RootfsLimits } from './types.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** Progress at most once per this many compressed bytes, so a big layer is not thousands of events. */
const PROGRESS_STEP = 4 * 1024 * 1024;

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
}

/** Replays the layers oldest first into the tree (and its staging directory), applying whiteouts. */
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
  for (const [index, layer] of layers.entries()) {
    options.signal?.throwIfAborted();
    await flattenOne(layer, index, options, stats);
  }
  return stats;
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

const LIMIT_HINT = 'raise max_unpacked_size / max_entries in config.toml if the image is genuine';

async function flattenOne(
  layer: LayerSource,
  index: number,
  options: FlattenOptions,
  stats: FlattenStats,
): Promise<void> {
  const progress = options.progress ?? silentProgress;
  const label = layer.digest ?? `layer ${index + 1}`;
  const source = await layer.open();
  const onAbort = () => source.destroy(cancelled(options.signal));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let lastReport = 0;
  const compressed = counter(Number.MAX_SAFE_INTEGER, (done) => {
    if (done - lastReport < PROGRESS_STEP) return;
    lastReport = done;
    progress({ kind: 'bytes', stage: 'flatten', item: label, done, total: layer.size });
  });
  const counted = pipelineCb(source, compressed, () => {});
  let compression: Compression = 'none';
  // A layer's tar is its content plus headers; entries cap the header overhead.
  const maxTar = options.limits.maxUnpackedBytes + options.limits.maxEntries * 1536 + 1024 * 1024;
  const plain = counter(maxTar, () => {});
  const extract = tarStream.extract();
  let last: { offset: number; size: number } | undefined;
  let entries = 0;
  try {
    const decoded = await decompressLayer(counted);
    compression = decoded.compression;
    const feeding = pipeline(decoded.tar, plain, extract);
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
    options.signal?.removeEventListener('abort', onAbort);
    source.destroy();
  }
  stats.layers.push({ digest: layer.digest, compression, entries, tarBytes: plain.total });
  progress({ kind: 'bytes', stage: 'flatten', item: label, done: compressed.total, total: layer.size });
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
    hint: 'the layer is corrupt or not a (gzip/zstd) tar; nothing was written outside the staging directory',
    cause: err,
  });
}

function metaOf(header: tarStream.Header, kind: EntryMeta['kind']): EntryMeta {
  const pax = (header.pax ?? undefined) as Record<string, string> | undefined;
  const num = (v: string | undefined, fallback: number) => {
    const n = v === undefined ? Number.NaN : Number(v);
    return Number.isFinite(n) ? n : fallback;
  };
  const mtimeMs = header.mtime instanceof Date ? header.mtime.getTime() : 0;
  const meta: EntryMeta = {
    kind,
    uid: num(pax?.uid, header.uid ?? 0),
    gid: num(pax?.gid, header.gid ?? 0),
    mode: (header.mode ?? (kind === 'dir' ? 0o755 : 0o644)) & 0o7777,
    mtime: Math.floor(num(pax?.mtime, Number.isFinite(mtimeMs) ? mtimeMs / 1000 : 0)),
    xattrs: xattrsOf(pax),
  };
  if (kind === 'char' || kind === 'block') {
    meta.devMajor = header.devmajor ?? 0;
    meta.devMinor = header.devminor ?? 0;
  }
  return meta;
}

async function applyEntry(
  entry: Readable,
  header: tarStream.Header,
  layer: number,
  options: FlattenOptions,
  stats: FlattenStats,
): Promise<void> {
  const { tree } = options;
  const parts = entryComponents(header.name);
  const drain = () => entry.resume();
  if (parts.length === 0) {
    // The root itself (`./` or umoci's `/`): its metadata is the image root's.
    if (header.type === 'directory') tree.root.meta = metaOf(header, 'dir');
    drain();
    return;
  }
  const name = parts[parts.length - 1]!;
  const mtime = Math.floor(Date.now() / 1000);
  const dir = await tree.parentOf(parts, layer, mtime);
  const shown = `/${parts.join('/')}`;

  if (name.startsWith(WHITEOUT)) {
    drain();
    if (name === OPAQUE) {
      stats.whiteouts.opaqueDirs++;
      await hideLower(tree, dir, layer);
    } else if (name.startsWith(`${WHITEOUT}${WHITEOUT}`)) {
      stats.dropped.push({ path: shown, reason: 'AUFS metadata entry' });
    } else {
      stats.whiteouts.files++;
      const victim = dir.children!.get(name.slice(WHITEOUT.length));
      if (victim) await tree.remove(victim);
    }
    return;
  }

  switch (header.type) {
    case 'file':
    case 'contiguous-file': {
      const size = header.size ?? 0;
      if (stats.contentBytes + size > options.limits.maxUnpackedBytes) {
        throw badRequest(
          `the image unpacks to more than ${options.limits.maxUnpackedBytes} bytes (at ${shown})`,
          { hint: LIMIT_HINT },
        );
      }
      stats.contentBytes += await tree.putFile(dir, name, metaOf(header, 'file'), layer, entry);
      return;
    }
    case 'directory':
      drain();
      await tree.putDir(dir, name, metaOf(header, 'dir'), layer);
      return;
    case 'symlink': {
      drain();
      const target = header.linkname ?? '';
      if (target === '' || /[\n\r\0]/.test(target))
        throw badRequest(`symlink ${shown} has an empty or unprintable target`);
      // Kept verbatim, absolute or not: the guest resolves it inside its own root.
      await tree.putSymlink(dir, name, metaOf(header, 'symlink'), layer, target);
      return;
    }
    case 'link': {
      drain();
      const target = await resolveHardlink(tree, header.linkname ?? '', shown, layer);
      await tree.putHardlink(dir, name, target, layer);
      return;
    }
    case 'character-device':
    case 'block-device':
    case 'fifo': {
      drain();
      const kind = header.type === 'fifo' ? 'fifo' : header.type === 'block-device' ? 'block' : 'char';
      await tree.putVirtual(dir, name, metaOf(header, kind), layer);
      return;
    }
    default:
      drain();
      stats.dropped.push({ path: shown, reason: `tar entry type ${header.type} is not supported` });
  }
}

async function resolveHardlink(
  tree: FlatTree,
  linkname: string,
  shown: string,
  layer: number,
): Promise<TreeNode> {
  let parts: string[];
  try {
    parts = entryComponents(linkname);
  } catch {
    throw badRequest(`hardlink ${shown} -> ${JSON.stringify(linkname)} points outside the image`);
  }
  if (parts.length === 0) throw badRequest(`hardlink ${shown} points at the root directory`);
  const dir = await tree.parentOf(parts, layer, 0);
  const target = dir.children!.get(parts[parts.length - 1]!);
  if (!target)
    throw badRequest(`hardlink ${shown} -> ${linkname}: the target is not in this or an earlier layer`);
  if (target.children) throw badRequest(`hardlink ${shown} -> ${linkname}: the target is a directory`);
  return target;
}

/** An opaque directory hides what lower layers put in it; this layer's entries (before or after) stay. */
async function hideLower(tree: FlatTree, dir: TreeNode, layer: number): Promise<void> {
  for (const child of [...dir.children!.values()]) {
    if (child.layer === layer || hasLayer(child, layer)) {
      if (child.children) await hideLower(tree, child, layer);
      continue;
    }
    await tree.remove(child);
  }
}

function hasLayer(node: TreeNode, layer: number): boolean {
  if (!node.children) return false;
  for (const child of node.children.values())
    if (child.layer === layer || hasLayer(child, layer)) return true;
  return false;
}
