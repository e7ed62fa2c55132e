import { crc32c, crc32cU32 } from './crc32c.js';
import {
  BLOCK_SIZE,
  BLOCKS_PER_GROUP,
  DESC_SIZE,
  EXTRA_ISIZE,
  FIRST_INO,
  type Geometry,
  INODE_SIZE,
  JOURNAL_INO,
} from './layout.js';

/** has_journal, ext_attr, dir_index. */
const COMPAT = 0x4 | 0x8 | 0x20;
/** filetype, extents, flex_bg. */
const INCOMPAT = 0x2 | 0x40 | 0x200;
/** sparse_super, large_file, huge_file, dir_nlink, extra_isize, metadata_csum. */
const RO_COMPAT = 0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x400;
/** mke2fs's default: 5 % kept for root. */
const RESERVED_PERCENT = 5;
/** Flex groups of 16, as mke2fs: only tells the kernel's allocator how groups cluster. */
const LOG_GROUPS_PER_FLEX = 4;

export interface SuperblockFields {
  geometry: Geometry;
  freeBlocks: number;
  freeInodes: number;
  uuid: Buffer;
  hashSeed: Buffer;
  label: string;
  now: number;
  /** i_block of the journal inode, backed up in the superblock (s_jnl_blocks). */
  journalIblock: Buffer;
  journalBytes: number;
}

/** The 1024-byte superblock as copy `group` holds it (s_block_group_nr), checksummed. */
export function encodeSuperblock(f: SuperblockFields, group: number): Buffer {
  const g = f.geometry;
  const b = Buffer.alloc(1024);
  b.writeUInt32LE(g.inodesCount, 0x0);
  b.writeUInt32LE(g.blocksCount, 0x4);
  b.writeUInt32LE(Math.floor((g.blocksCount * RESERVED_PERCENT) / 100), 0x8);
  b.writeUInt32LE(f.freeBlocks, 0xc);
  b.writeUInt32LE(f.freeInodes, 0x10);
  b.writeUInt32LE(0, 0x14); // s_first_data_block: 0 with 4 KiB blocks
  b.writeUInt32LE(2, 0x18); // log2(block size) - 10
  b.writeUInt32LE(2, 0x1c);
  b.writeUInt32LE(BLOCKS_PER_GROUP, 0x20);
  b.writeUInt32LE(BLOCKS_PER_GROUP, 0x24);
  b.writeUInt32LE(g.inodesPerGroup, 0x28);
  b.writeUInt32LE(f.now, 0x30); // s_wtime
  b.writeUInt16LE(0xffff, 0x36); // s_max_mnt_count: -1, no forced checks
  b.writeUInt16LE(0xef53, 0x38);
  b.writeUInt16LE(1, 0x3a); // clean
  b.writeUInt16LE(1, 0x3c); // errors: continue
  b.writeUInt32LE(f.now, 0x40); // s_lastcheck
  b.writeUInt32LE(1, 0x4c); // dynamic revision
  b.writeUInt32LE(FIRST_INO, 0x54);
  b.writeUInt16LE(INODE_SIZE, 0x58);
  b.writeUInt16LE(group, 0x5a);
  b.writeUInt32LE(COMPAT, 0x5c);
  b.writeUInt32LE(INCOMPAT, 0x60);
  b.writeUInt32LE(RO_COMPAT, 0x64);
  f.uuid.copy(b, 0x68);
  Buffer.from(f.label).copy(b, 0x78, 0, 16);
  b.writeUInt32LE(JOURNAL_INO, 0xe0);
  f.hashSeed.copy(b, 0xec);
  b.writeUInt8(1, 0xfc); // half_md4, what mke2fs picks
  b.writeUInt8(1, 0xfd); // s_jnl_backup_type: the journal inode's blocks are in s_jnl_blocks
  b.writeUInt32LE(0x4 | 0x8, 0x100); // default mount options: user_xattr, acl
  b.writeUInt32LE(f.now, 0x108); // s_mkfs_time
  f.journalIblock.copy(b, 0x10c, 0, 60);
  b.writeUInt32LE(Math.floor(f.journalBytes / 2 ** 32), 0x10c + 60);
  b.writeUInt32LE(f.journalBytes % 2 ** 32, 0x10c + 64);
  b.writeUInt16LE(EXTRA_ISIZE, 0x15c);
  b.writeUInt16LE(EXTRA_ISIZE, 0x15e);
  b.writeUInt32LE(0x1, 0x160); // signed directory hash (x86's char)
  b.writeUInt8(LOG_GROUPS_PER_FLEX, 0x174);
  b.writeUInt8(1, 0x175); // crc32c
  b.writeUInt32LE(crc32c(0xffffffff, b.subarray(0, 0x3fc)), 0x3fc);
  return b;
}

export interface GroupFields {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  freeBlocks: number;
  freeInodes: number;
  usedDirs: number;
  itableUnused: number;
  blockBitmapCsum: number;
  inodeBitmapCsum: number;
}

/** bg_flags: the inode table reads as zeros (a fresh sparse file), so the kernel need not zero it. */
const ITABLE_ZEROED = 0x4;

/** All group descriptors, each checksummed (metadata_csum: crc32c of uuid seed, group number, descriptor). */
export function encodeDescriptors(
  groups: readonly GroupFields[],
  csumSeed: number,
  gdtBlocks: number,
): Buffer {
  const b = Buffer.alloc(gdtBlocks * BLOCK_SIZE);
  groups.forEach((g, i) => {
    const o = i * DESC_SIZE;
    b.writeUInt32LE(g.blockBitmap, o);
    b.writeUInt32LE(g.inodeBitmap, o + 4);
    b.writeUInt32LE(g.inodeTable, o + 8);
    b.writeUInt16LE(g.freeBlocks, o + 0xc);
    b.writeUInt16LE(g.freeInodes, o + 0xe);
    b.writeUInt16LE(g.usedDirs, o + 0x10);
    b.writeUInt16LE(ITABLE_ZEROED, o + 0x12);
    b.writeUInt16LE(g.blockBitmapCsum & 0xffff, o + 0x18);
    b.writeUInt16LE(g.inodeBitmapCsum & 0xffff, o + 0x1a);
    b.writeUInt16LE(g.itableUnused, o + 0x1c);
    const crc = crc32c(crc32cU32(csumSeed, i), b.subarray(o, o + DESC_SIZE));
    b.writeUInt16LE(crc & 0xffff, o + 0x1e);
  });
  return b;
}

/** jbd2's superblock (big-endian) for an empty internal journal of `blocks` blocks, as mke2fs writes it. */
export function encodeJournalSuperblock(blocks: number, uuid: Buffer): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  b.writeUInt32BE(0xc03b3998, 0);
  b.writeUInt32BE(4, 4); // superblock v2
  b.writeUInt32BE(BLOCK_SIZE, 0xc);
  b.writeUInt32BE(blocks, 0x10);
  b.writeUInt32BE(1, 0x14); // s_first
  b.writeUInt32BE(1, 0x18); // s_sequence
  uuid.copy(b, 0x30);
  b.writeUInt32BE(1, 0x40); // s_nr_users
  return b;
}
