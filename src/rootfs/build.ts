import { randomBytes } from 'node:crypto';
import { rename, rm, stat } from 'node:fs/promises';
import { Ext4Writer, ImageContentError, ImageTooSmallError } from '../ext4/index.js';
import { BangerError, badRequest } from '../model/errors.js';
import type { GuestAsset } from '../model/guest-asset.js';
import type { LayerSource } from '../model/layer.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { formatSize } from '../model/sizes.js';
import { addAssetsToTree } from './assets.js';
import { chooseSize, estimateBytes } from './ext4.js';
import { flattenLayers } from './flatten.js';
import { DEFAULT_LIMITS } from './limits.js';
import { buildReport } from './report.js';
import { FlatTree } from './tree.js';
import type { FidelityReport, RootfsLimits } from './types.js';

export interface BuildRootfsOptions {
  /** Oldest first. */
  layers: LayerSource[];
  /** The ext4 file to create; it appears only when the build succeeded. */
  output: string;
  /** Image size; default content × 1.5, at least 1 GiB. */
  sizeBytes?: number;
  assets?: GuestAsset[];
  limits?: RootfsLimits;
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** Tar bytes of the next layer decompressed ahead (flatten's READ_AHEAD_BYTES unless given; 0: none). */
  readAheadBytes?: number;
}

/** Free inodes the guest gets beyond the content's, as mke2fs -N was given before. */
const INODE_SLACK = 1.25;
const INODE_EXTRA = 1024;

/**
 * OCI layers -> a bootable ext4, rootless, in one pass: the layers stream through the flattening tree
 * (whiteouts, opaque dirs, hostile-entry refusals) and every file's bytes go straight into their final
 * blocks of the image; then the ext4 writer lays out inodes, directories, xattrs, bitmaps and the journal
 * around them. No staging tree, no mkfs, no debugfs, no e2fsck. The output is
 * written under a temporary name and renamed into place only on success.
 */
export async function buildRootfs(
  opts: BuildRootfsOptions,
): Promise<{ sizeBytes: number; report: FidelityReport }> {
  const progress = opts.progress ?? silentProgress;
  const { signal } = opts;
  const tmpOutput = `${opts.output}.tmp-${randomBytes(6).toString('hex')}`;
  let writer: Ext4Writer | undefined;
  try {
    writer = await Ext4Writer.create(tmpOutput);
    const tree = new FlatTree(writer);

    progress({ kind: 'stage', stage: 'flatten', message: `${opts.layers.length} layer(s)` });
    const stats = await flattenLayers({
      layers: opts.layers,
      tree,
      limits: opts.limits ?? DEFAULT_LIMITS,
      progress,
      signal,
      readAheadBytes: opts.readAheadBytes,
    });
    const assets = opts.assets ?? [];
    if (assets.length > 0) await addAssetsToTree(tree, assets, opts.layers.length);
    signal?.throwIfAborted();

    const nodes = [...tree.walk()];
    // One inode per name but for extra hard-link names, which are only directory entries.
    const inodes = nodes.filter((n) => !n.hardlink);
    const sizes = inodes.filter((n) => n.meta.kind === 'file').map((n) => n.size ?? 0);
    const estimate = estimateBytes(sizes, inodes.length - sizes.length);
    // Blocks a later layer freed stay below the high-water mark: the image must reach past it too.
    const written = { bytes: Math.max(estimate.bytes, writer.usedBytes), inodes: estimate.inodes };
    const sizeBytes = chooseSize(written, opts.sizeBytes);

    progress({ kind: 'stage', stage: 'write', message: `ext4 of ${sizeBytes} bytes` });
    signal?.throwIfAborted();
    try {
      await writer.finish(tree.entry(), {
        sizeBytes,
        minInodes: Math.ceil(estimate.inodes * INODE_SLACK) + INODE_EXTRA,
        label: 'banger-rootfs',
      });
    } catch (err) {
      if (err instanceof ImageTooSmallError) {
        throw badRequest(`${err.message}`, {
          hint: `use a size of at least ${formatSize(Math.max(err.neededBytes, sizeBytes) * 1.1)}`,
        });
      }
      if (err instanceof ImageContentError)
        throw badRequest(`the image cannot be written as ext4: ${err.message}`, {
          hint: 'the image is malformed or hostile; nothing was built',
        });
      throw err;
    }
    await writer.close();
    signal?.throwIfAborted();
    // No e2fsck -fn here: measured (npm run bench rootfs-build) it was 12 % of a Debian build and 32 % of
    // an Alpine one, over the 10 % budget; every test checks every image the writer makes with it instead.
    await rename(tmpOutput, opts.output);
    const imageBytes = (await stat(opts.output)).blocks * 512;
    return { sizeBytes, report: buildReport(tree, stats, imageBytes, assets.length) };
  } catch (err) {
    await writer?.close();
    await rm(tmpOutput, { force: true });
    if (signal?.aborted && !(err instanceof BangerError && err.code !== 'operation_failed'))
      throw new BangerError('cancelled', 'rootfs build was cancelled', { cause: err });
    throw err;
  }
}
