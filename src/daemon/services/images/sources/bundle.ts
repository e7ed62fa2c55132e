import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type BundleEntry,
  type BundleManifest,
  checkDownloadUrl,
  unpackBundle,
} from '../../../../catalog/images/index.js';
import { operationFailed } from '../../../../model/errors.js';
import type { ProgressSink } from '../../../../model/progress.js';
import type { StagingContext } from '../install.js';
import { IMAGE_FILES } from '../layout.js';
import type { ImageServiceDeps } from '../service-deps.js';

/** Opens the bundle bytes: an https (or loopback http) download, or a local file:// path. */
async function openBundle(
  entry: BundleEntry,
  fetchImpl: typeof fetch,
  signal?: AbortSignal,
): Promise<Readable> {
  if (entry.url.startsWith('file://')) return createReadStream(new URL(entry.url));
  checkDownloadUrl('image bundle URL', entry.url);
  const res = await fetchImpl(entry.url, { signal }).catch((err: unknown) => {
    throw operationFailed(`cannot download image bundle ${entry.url}`, { cause: err });
  });
  if (!res.ok || !res.body) {
    throw operationFailed(`cannot download image bundle ${entry.url}: HTTP ${res.status}`, {
      hint: res.status === 404 ? 'the catalog entry points at a bundle that is not there' : undefined,
    });
  }
  return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
}

/**
 * Downloads and unpacks a catalog bundle into staging (sha256 and size checked while it streams), then
 * writes this banger's guest assets into it, so an old bundle still gets the current agent.
 */
export async function fillFromBundle(
  deps: ImageServiceDeps,
  ctx: StagingContext,
  entry: BundleEntry,
  o: { progress?: ProgressSink; signal?: AbortSignal },
): Promise<BundleManifest> {
  const source = await openBundle(entry, deps.fetch ?? fetch, o.signal);
  const manifest = await unpackBundle({
    source,
    origin: entry.url,
    sha256: entry.sha256,
    sizeBytes: entry.sizeBytes,
    destDir: ctx.staging,
    maxRootfsBytes: deps.limits.maxUnpackedBytes,
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const assets = deps.parts.guest.guestAssets();
  if (assets.length > 0) {
    o.progress?.({ kind: 'stage', stage: 'inject', message: 'writing the guest agent into the image' });
    await deps.parts.rootfs.injectAssets(join(ctx.staging, IMAGE_FILES.rootfs), assets, deps.runner);
  }
  return manifest;
}
