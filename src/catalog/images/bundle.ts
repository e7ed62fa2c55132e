import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { z } from 'zod';
import { CompressStream, DecompressStream } from 'zstd-napi';
import { BangerError, badRequest, operationFailed } from '../../model/errors.js';
import { type ProgressSink, silentProgress } from '../../model/progress.js';
import { catalogDownloadFailures, verifyingStream } from '../../model/verify-stream.js';
import { type BundleManifest, bundleManifestSchema } from './schema.js';

/** The only two members a bundle may hold. */
export const BUNDLE_ROOTFS = 'rootfs.ext4';
export const BUNDLE_MANIFEST = 'manifest.json';
/** A manifest is a few hundred bytes; anything this big is not one. */
const MAX_MANIFEST_BYTES = 64 * 1024;

export interface PackBundleOptions {
  rootfsPath: string;
  manifest: BundleManifest;
  /** The .tar.zst to create (written under a temporary name, then renamed). */
  out: string;
  /** zstd level; 19 for publishing, lower for tests. */
  level?: number;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface PackedBundle {
  path: string;
  sha256: string;
  sizeBytes: number;
}

/** Counts and hashes bytes as they pass through. */
function hashing(onChunk?: (done: number) => void) {
  const hash = createHash('sha256');
  let done = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      done += chunk.length;
      hash.update(chunk);
      onChunk?.(done);
      cb(null, chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex'), size: () => done };
}

/** Packs rootfs.ext4 + manifest.json into a `.tar.zst`, reporting its sha256 and size for a catalog entry. */
export async function packBundle(options: PackBundleOptions): Promise<PackedBundle> {
  const progress = options.progress ?? silentProgress;
  const rootfsSize = (await stat(options.rootfsPath)).size;
  const manifest = Buffer.from(`${JSON.stringify(bundleManifestSchema.parse(options.manifest), null, 2)}\n`);
  const tmp = join(dirname(options.out), `.${basename(options.out)}.${randomBytes(4).toString('hex')}.tmp`);
  const pack = tarStream.pack();
  const out = hashing();
  const writing = pipeline(
    pack,
    new CompressStream({ compressionLevel: options.level ?? 19 }),
    out.stream,
    createWriteStream(tmp, { flags: 'wx', mode: 0o644 }),
    { signal: options.signal },
  );
  try {
    const feeding = (async () => {
      pack.entry({ name: BUNDLE_MANIFEST, size: manifest.length, mode: 0o644 }, manifest);
      const entry = pack.entry({ name: BUNDLE_ROOTFS, size: rootfsSize, mode: 0o644 });
      let done = 0;
      const input = createReadStream(options.rootfsPath);
      input.on('data', (chunk) => {
        done += chunk.length;
        progress({ kind: 'bytes', stage: 'pack', item: BUNDLE_ROOTFS, done, total: rootfsSize });
      });
      await pipeline(input, entry, { signal: options.signal });
      pack.finalize();
    })();
    await Promise.all([feeding, writing]);
    const fh = await open(tmp, 'r');
    await fh.sync();
    await fh.close();
    await rename(tmp, options.out);
  } catch (err) {
    pack.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  return { path: options.out, sha256: out.digest(), sizeBytes: out.size() };
}

export interface UnpackBundleOptions {
  /** The compressed bundle bytes (a download or a file). */
  source: Readable;
  /** Where the bytes came from, for messages. */
  origin: string;
  sha256: string;
  sizeBytes: number;
  /** An empty staging directory; on failure the caller removes it. */
  destDir: string;
  /** Largest rootfs.ext4 accepted (config max_unpacked_size). */
  maxRootfsBytes: number;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

/** A member name as the bundle must spell it, or a refusal naming it. */
function memberName(raw: string, origin: string): string {
  const name = raw.replace(/^(\.\/)+/, '');
  if (name !== BUNDLE_ROOTFS && name !== BUNDLE_MANIFEST) {
    const shown =
      posix.normalize(raw).startsWith('..') || raw.startsWith('/')
        ? `unsafe path ${JSON.stringify(raw)}`
        : JSON.stringify(raw);
    throw badRequest(`image bundle ${origin} holds an unexpected member ${shown}`, {
      hint: `a bundle holds exactly ${BUNDLE_ROOTFS} and ${BUNDLE_MANIFEST}; nothing was installed`,
    });
  }
  return name;
}

async function unpackMembers(extract: tarStream.Extract, o: UnpackBundleOptions): Promise<Buffer> {
  const seen = new Set<string>();
  let manifest: Buffer | undefined;
  for await (const entry of extract) {
    const { header } = entry;
    const name = memberName(header.name, o.origin);
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      throw badRequest(`image bundle ${o.origin} member ${name} is a ${header.type}, not a regular file`);
    }
    if (seen.has(name)) throw badRequest(`image bundle ${o.origin} holds ${name} twice`);
    seen.add(name);
    const size = header.size ?? 0;
    if (name === BUNDLE_MANIFEST) {
      if (size > MAX_MANIFEST_BYTES) throw badRequest(`image bundle ${o.origin} has a ${size}-byte manifest`);
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      manifest = Buffer.concat(chunks);
    } else {
      if (size > o.maxRootfsBytes) {
        throw badRequest(
          `image bundle ${o.origin} rootfs is ${size} bytes, over the limit of ${o.maxRootfsBytes}`,
          {
            hint: 'raise max_unpacked_size in config.toml if you trust this bundle',
          },
        );
      }
      await pipeline(entry, createWriteStream(join(o.destDir, BUNDLE_ROOTFS), { flags: 'wx', mode: 0o644 }));
    }
  }
  for (const required of [BUNDLE_ROOTFS, BUNDLE_MANIFEST]) {
    if (!seen.has(required)) throw badRequest(`image bundle ${o.origin} has no ${required}`);
  }
  return manifest as Buffer;
}

/**
 * Streams a bundle into `destDir` while checking its size and sha256, accepting exactly rootfs.ext4 and
 * manifest.json as regular files. Resolves only when the digest matched and both members arrived.
 */
export async function unpackBundle(o: UnpackBundleOptions): Promise<BundleManifest> {
  const extract = tarStream.extract();
  const piping = pipeline(
    o.source,
    verifyingStream({
      sha256: o.sha256,
      size: o.sizeBytes,
      failures: catalogDownloadFailures(`image bundle ${o.origin}`, o.sha256),
      onBytes: (done) =>
        o.progress?.({ kind: 'bytes', stage: 'download', item: o.origin, done, total: o.sizeBytes }),
    }),
    new DecompressStream(),
    extract,
    { signal: o.signal },
  );
  const consuming = unpackMembers(extract, o).catch((err: unknown) => {
    o.source.destroy(err as Error);
    throw err;
  });
  const results = await Promise.allSettled([piping, consuming]);
  const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (reasons.length > 0) {
    const ours = reasons.find((r) => r instanceof BangerError);
    if (ours) throw ours;
    const first = reasons[0];
    throw operationFailed(
      `image bundle ${o.origin} could not be unpacked: ${first instanceof Error ? first.message : String(first)}`,
      {
        hint: 'a .tar.zst that does not decode means the bundle or the catalog entry is wrong',
        cause: first,
      },
    );
  }
  const raw = (results[1] as PromiseFulfilledResult<Buffer>).value;
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw badRequest(`image bundle ${o.origin} has a manifest that is not JSON`, { cause: err });
  }
  const parsed = bundleManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw badRequest(`image bundle ${o.origin} has an invalid manifest: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
