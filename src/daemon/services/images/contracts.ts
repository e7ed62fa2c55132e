import type { Runner } from '../../../host/index.js';
import type { GuestAsset } from '../../../model/guest-asset.js';
import type { ImageConfig } from '../../../model/image.js';
import type { LayerSource } from '../../../model/layer.js';
import type { ProgressSink } from '../../../model/progress.js';

/**
 * What the image service needs from the rooms below it (oci, rootfs, guest), spelled as the brief's
 * contracts. The composition root hands in the real modules; until they land on main it hands in the
 * stand-ins from stand-ins.ts, and nothing else in this folder can tell the difference.
 */

/** The rootfs builder's account of what it kept, changed or refused; stored beside the image as JSON. */
export type FidelityReport = Record<string, unknown>;

export interface BuildRootfsOptions {
  layers: LayerSource[];
  /** ext4 file to create atomically. */
  output: string;
  /** Staging directory, removed at the end. */
  workDir: string;
  sizeBytes?: number;
  assets?: GuestAsset[];
  limits?: RootfsLimits;
  runner?: Runner;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

/** Tar-bomb limits (config max_unpacked_size, max_entries). */
export interface RootfsLimits {
  maxUnpackedBytes: number;
  maxEntries: number;
}

export interface RootfsModule {
  buildRootfs(opts: BuildRootfsOptions): Promise<{ sizeBytes: number; report: FidelityReport }>;
  writeFidelityReport(path: string, report: FidelityReport): Promise<void>;
  /** Writes guest assets into an existing ext4 (debugfs, no mount). */
  injectAssets(ext4Path: string, assets: GuestAsset[], runner?: Runner): Promise<void>;
}

export interface GuestModule {
  guestAssets(opts?: { init?: 'auto' | 'shim' }): GuestAsset[];
}

export interface PulledImage {
  reference: string;
  manifestDigest: string;
  /** os/arch[/variant] */
  platform: string;
  config: ImageConfig;
  /** Oldest first; each open() streams from the verified cache. */
  layers: LayerSource[];
  /** Drops the pin that protects these blobs from prune. */
  release(): Promise<void>;
}

export interface OciPuller {
  pull(
    ref: string,
    opts: { platform?: string; progress?: ProgressSink; signal?: AbortSignal },
  ): Promise<PulledImage>;
  cacheSize(): Promise<number>;
  pruneCache(): Promise<{ removed: number; bytes: number }>;
}

/** Everything the image pipeline borrows from below, in one record. */
export interface ImagePipelineParts {
  rootfs: RootfsModule;
  guest: GuestModule;
  puller: OciPuller;
}
