import type { FileData } from '../ext4/index.js';

/** What the flattened tree knows about one inode, taken from its tar header. */
export type EntryKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export interface EntryMeta {
  kind: EntryKind;
  uid: number;
  gid: number;
  /** Permission bits including setuid/setgid/sticky (07777), without the file-type bits. */
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** The fraction of a PAX mtime, in nanoseconds. */
  mtimeNsec?: number;
  /** xattr name -> raw value bytes (PAX `SCHILY.xattr.*` / `LIBARCHIVE.xattr.*`). */
  xattrs: Map<string, Buffer>;
  devMajor?: number;
  devMinor?: number;
  /** A regular file's content, already in its final blocks in the image being written. */
  data?: FileData;
  symlinkTarget?: string;
}

/** Tar-bomb guards. Each one fails the build with a message naming the limit and the config key. */
export interface RootfsLimits {
  maxLayers: number;
  /** Tar entries over all layers. */
  maxEntries: number;
  /** Sum of regular-file sizes over all layers. */
  maxUnpackedBytes: number;
}

/** Counts and notes about how faithfully the image's layers became the ext4; stored next to the image. */
export interface FidelityReport {
  version: 1;
  layers: { digest?: string; compression: Compression; entries: number; tarBytes: number }[];
  /** Entries in the final tree by kind, plus hardlinks (extra names of an inode). */
  entries: Record<EntryKind | 'hardlink', number>;
  kept: {
    setuidSetgidSticky: number;
    xattrs: number;
    deviceNodes: number;
    fifos: number;
  };
  whiteouts: { files: number; opaqueDirs: number };
  /** Things made different from the layers on purpose, with the reason. */
  adjusted: { path: string; what: string }[];
  /** Entries that are not in the image, with the reason. */
  dropped: { path: string; reason: string }[];
  contentBytes: number;
  imageBytes: number;
  injectedAssets: number;
}

export type Compression = 'gzip' | 'zstd' | 'none';
