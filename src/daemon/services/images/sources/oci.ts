import type { ProgressSink } from '../../../../model/progress.js';
import type { FilledImage, StagingContext } from '../install.js';
import type { ImageServiceDeps } from '../service-deps.js';
import { buildRootfsInto } from './tar.js';

/**
 * Pulls an OCI image (blobs verified into the cache by the puller) and converts its layers into the
 * staging rootfs. The pin on the cached blobs is released whatever happens, so prune can reclaim them.
 */
export async function fillFromOci(
  deps: ImageServiceDeps,
  ctx: StagingContext,
  ref: string,
  o: {
    platform?: string | undefined;
    sizeBytes?: number | undefined;
    progress?: ProgressSink;
    signal?: AbortSignal;
  },
): Promise<FilledImage> {
  const pulled = await deps.parts.puller.pull(ref, {
    ...(o.platform ? { platform: o.platform } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  try {
    const { reportPath } = await buildRootfsInto(deps, ctx, pulled.layers, o);
    return {
      source: {
        kind: 'oci',
        reference: pulled.reference,
        digest: pulled.manifestDigest,
        platform: pulled.platform,
      },
      config: pulled.config,
      artifacts: { reportPath },
    };
  } finally {
    await pulled.release();
  }
}
