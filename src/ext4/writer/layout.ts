/**
 * The fixed shape of every image the writer makes, and the geometry derived from its final size.
 * 4 KiB blocks, 32768 blocks per group, 256-byte inodes, 32-byte group descriptors (no 64bit: images stay
 * far below 16 TiB), flex_bg so bitmaps and inode tables may sit anywhere, sparse_super backups.
 */
export const BLOCK_SIZE = 4096;
export const BLOCKS_PER_GROUP = 32768;
export const INODE_SIZE = 256;
/** 128 bytes of the classic inode plus the fields up to i_projid (nanosecond times, crtime, checksum hi). */
export const EXTRA_ISIZE = 32;
export const DESC_SIZE = 32;
export const INODES_PER_BLOCK = BLOCK_SIZE / INODE_SIZE;
export const ROOT_INO = 2;
export const JOURNAL_INO = 8;
export const LOST_FOUND_INO = 11;
/** Inodes below this are reserved (ext4's s_first_ino); lost+found takes the first ordinary one. */
export const FIRST_INO = 11;
/** mke2fs's default bytes-per-inode for filesystems of this size. */
export const BYTES_PER_INODE = 16384;
/** A group's bitmap is one block, so no group may hold more inodes than it has bits. */
export const MAX_INODES_PER_GROUP = BLOCK_SIZE * 8;
/**
 * Blocks kept free at the start of every group that holds a superblock copy (0, 1 and powers of 3, 5, 7),
 * decided before the final size is known: the superblock and as many descriptor blocks as up to
 * (WINDOW - 1) * 128 groups need. Unused ones end up free; 64 covers 1 TiB.
 */
export const SUPER_WINDOW = 64;
export const MAX_GROUPS = (SUPER_WINDOW - 1) * (BLOCK_SIZE / DESC_SIZE);
/** The smallest last group worth keeping (mke2fs drops a shorter tail); it must hold its own metadata. */
const MIN_LAST_GROUP = SUPER_WINDOW + 64;

/** Whether group `g` carries a superblock and descriptor copy (sparse_super). */
export function hasSuper(g: number): boolean {
  if (g <= 1) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}

export interface Geometry {
  blocksCount: number;
  groups: number;
  inodesPerGroup: number;
  inodesCount: number;
  /** Blocks of group descriptors (after the superblock, in every copy). */
  gdtBlocks: number;
  /** Blocks of one group's inode table. */
  itableBlocks: number;
  journalBlocks: number;
}

/** What mke2fs gives a filesystem of this many blocks (ext2fs_default_journal_size). */
export function journalBlocksFor(blocks: number): number {
  if (blocks < 32768) return 1024;
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

/**
 * The geometry of an image of `sizeBytes` holding at least `inodes` inodes, or a reason it cannot exist.
 * Inodes are mke2fs's default ratio, raised when the content has more entries than that allows.
 */
export function geometryFor(sizeBytes: number, inodes: number): Geometry | string {
  let blocksCount = Math.floor(sizeBytes / BLOCK_SIZE);
  let groups = Math.ceil(blocksCount / BLOCKS_PER_GROUP);
  const tail = blocksCount - (groups - 1) * BLOCKS_PER_GROUP;
  if (groups > 1 && tail < MIN_LAST_GROUP) {
    groups--;
    blocksCount = groups * BLOCKS_PER_GROUP;
  }
  if (blocksCount < 4096) return `${sizeBytes} bytes is too small for an ext4 image (at least 16 MiB)`;
  if (groups > MAX_GROUPS)
    return `${sizeBytes} bytes is larger than the ${MAX_GROUPS * 128} MiB this writer makes`;
  const byRatio = Math.floor(sizeBytes / BYTES_PER_INODE);
  const wanted = Math.max(byRatio, inodes);
  // Whole inode-table blocks per group, as mke2fs rounds.
  let inodesPerGroup = Math.ceil(wanted / groups / INODES_PER_BLOCK) * INODES_PER_BLOCK;
  inodesPerGroup = Math.max(inodesPerGroup, INODES_PER_BLOCK * 2);
  if (inodesPerGroup > MAX_INODES_PER_GROUP)
    return `${inodes} inodes do not fit in ${groups} block groups (at most ${MAX_INODES_PER_GROUP} each)`;
  return {
    blocksCount,
    groups,
    inodesPerGroup,
    inodesCount: inodesPerGroup * groups,
    gdtBlocks: Math.ceil((groups * DESC_SIZE) / BLOCK_SIZE),
    itableBlocks: (inodesPerGroup * INODE_SIZE) / BLOCK_SIZE,
    journalBlocks: journalBlocksFor(blocksCount),
  };
}
