import { Ext4Image, type InodeKind } from '../ext4/index.js';
import { badRequest, operationFailed } from '../model/errors.js';
import { formatSize } from '../model/sizes.js';

/** The image gets room to grow: content × 1.5, never below 1 GiB (as the original). */
const HEADROOM = 1.5;
const MIN_IMAGE_BYTES = 1024 ** 3;
const BLOCK = 4096;
/** A debugfs batch writes every file of an image: generous, but not forever. */
export const DEBUGFS_TIMEOUT_MS = 30 * 60_000;

/** What the image must hold: file blocks, one block per directory/symlink, inode table. */
export interface ContentEstimate {
  bytes: number;
  inodes: number;
}

export function estimateBytes(fileSizes: Iterable<number>, otherInodes: number): ContentEstimate {
  let bytes = 0;
  let inodes = otherInodes;
  for (const size of fileSizes) {
    bytes += Math.ceil(size / BLOCK) * BLOCK;
    inodes++;
  }
  bytes += otherInodes * BLOCK + inodes * 256;
  return { bytes, inodes };
}

/** The image size: the requested one if the content fits, else content × 1.5 (at least 1 GiB). */
export function chooseSize(estimate: ContentEstimate, requested: number | undefined): number {
  // ext4's own metadata (journal, group descriptors, bitmaps) takes a few percent plus the journal.
  const needed = Math.ceil(estimate.bytes * 1.1) + 8 * 1024 * 1024;
  if (requested !== undefined) {
    if (requested < needed) {
      throw badRequest(
        `the image content needs about ${formatSize(needed)} but the requested size is ${formatSize(requested)}`,
        { hint: `use a size of at least ${formatSize(needed)}` },
      );
    }
    return requested;
  }
  const size = Math.max(MIN_IMAGE_BYTES, Math.ceil(estimate.bytes * HEADROOM));
  return Math.ceil(size / (1024 * 1024)) * 1024 * 1024;
}

/** Lines of debugfs stderr that are not errors: its banner. */
const BANNER = /^debugfs \d+\.\d+/;

/** debugfs exits 0 even when a command fails, so anything on stderr but its banner is a failure. */
export function checkDebugfsErrors(image: string, stderr: string): void {
  const errors = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !BANNER.test(l));
  if (errors.length > 0) {
    throw operationFailed(`debugfs failed on ${image}: ${errors.slice(0, 5).join('; ')}`);
  }
}

/**
 * What each of `paths` is in an image built elsewhere (absent paths are left out), read with banger's
 * own ext4 reader: no tool runs as root on the image. Symlinks in the middle of a path are followed
 * inside the image, as debugfs does; the last component is not.
 */
export async function probePaths(image: string, paths: readonly string[]): Promise<Map<string, InodeKind>> {
  const img = await Ext4Image.open(image);
  try {
    const found = new Map<string, InodeKind>();
    for (const p of paths) {
      const inode = await img.lookup(p);
      if (inode) found.set(p, inode.kind);
    }
    return found;
  } finally {
    await img.close();
  }
}
