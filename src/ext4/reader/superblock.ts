import { refuseImage } from './errors.js';

/** The superblock sits 1024 bytes into the image and is 1024 bytes long. */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
const MAGIC = 0xef53;

/** incompat features: a reader that does not know one must not read the filesystem (ext4's own rule). */
const INCOMPAT = {
  compression: 0x1,
  filetype: 0x2,
  recover: 0x4,
  journalDev: 0x8,
  metaBg: 0x10,
  extents: 0x40,
  bit64: 0x80,
  mmp: 0x100,
  flexBg: 0x200,
  eaInode: 0x400,
  dirData: 0x1000,
  csumSeed: 0x2000,
  largedir: 0x4000,
  inlineData: 0x8000,
  encrypt: 0x10000,
  casefold: 0x20000,
} as const;
/**
 * What this reader reads. A journal needing recovery is read as it stands (the same view debugfs gives);
 * MMP, checksums and casefolding change nothing for a read. meta_bg, inline data, encryption, dirdata and
 * compression change where or how data lies, and are refused rather than misread.
 */
const INCOMPAT_READ =
  INCOMPAT.filetype |
  INCOMPAT.recover |
  INCOMPAT.extents |
  INCOMPAT.bit64 |
  INCOMPAT.mmp |
  INCOMPAT.flexBg |
  INCOMPAT.eaInode |
  INCOMPAT.csumSeed |
  INCOMPAT.largedir |
  INCOMPAT.casefold;
const INCOMPAT_NAMES: Record<number, string> = {
  [INCOMPAT.compression]: 'compression',
  [INCOMPAT.journalDev]: 'journal_dev',
  [INCOMPAT.metaBg]: 'meta_bg',
  [INCOMPAT.dirData]: 'dirdata',
  [INCOMPAT.inlineData]: 'inline_data',
  [INCOMPAT.encrypt]: 'encrypt',
};
/**
 * ro_compat features only matter to a writer, except bigalloc (cluster-sized allocation) and snapshots,
 * which this reader has not been taught. Unknown bits are refused: ext4 may give one a meaning for reads.
 */
const RO_COMPAT_READ =
  0x1 | // sparse_super
  0x2 | // large_file
  0x4 | // btree_dir
  0x8 | // huge_file
  0x10 | // gdt_csum
  0x20 | // dir_nlink
  0x40 | // extra_isize
  0x100 | // quota
  0x400 | // metadata_csum
  0x800 | // replica
  0x1000 | // readonly
  0x2000 | // project
  0x4000 | // shared_blocks
  0x8000; // verity

/** The superblock's fields this reader uses, each checked against the others and the file size. */
export interface Superblock {
  blockSize: number;
  blocksCount: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodesCount: number;
  inodeSize: number;
  firstIno: number;
  descSize: number;
  groupCount: number;
}

/** Parses and checks the superblock of `image` (a file of `fileSize` bytes). */
export function parseSuperblock(image: string, sb: Buffer, fileSize: number): Superblock {
  const refuse = (why: string) => refuseImage(image, why);
  if (sb.length < SUPERBLOCK_SIZE || sb.readUInt16LE(0x38) !== MAGIC) throw refuse('no ext2/3/4 superblock');
  const logBlock = sb.readUInt32LE(0x18);
  // 1 KiB .. 64 KiB, the range ext4 allows.
  if (logBlock > 6) throw refuse(`block size 2^${10 + logBlock} is out of range`);
  const blockSize = 1024 << logBlock;
  const incompat = sb.readUInt32LE(0x60);
  const roCompat = sb.readUInt32LE(0x64);
  const unknownIncompat = incompat & ~INCOMPAT_READ;
  if (unknownIncompat !== 0) {
    const names = Object.entries(INCOMPAT_NAMES)
      .filter(([bit]) => (unknownIncompat & Number(bit)) !== 0)
      .map(([, n]) => n);
    throw refuse(
      `it uses features this reader does not support (${names.join(', ') || `incompat 0x${unknownIncompat.toString(16)}`})`,
    );
  }
  if ((incompat & INCOMPAT.filetype) === 0)
    throw refuse('its directories carry no file types (no filetype feature)');
  const unknownRo = roCompat & ~RO_COMPAT_READ;
  if (unknownRo !== 0)
    throw refuse(`it uses ro_compat features this reader does not support (0x${unknownRo.toString(16)})`);
  const is64 = (incompat & INCOMPAT.bit64) !== 0;
  const blocksCount = sb.readUInt32LE(0x4) + (is64 ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  const firstDataBlock = sb.readUInt32LE(0x14);
  const blocksPerGroup = sb.readUInt32LE(0x20);
  const inodesPerGroup = sb.readUInt32LE(0x28);
  const inodesCount = sb.readUInt32LE(0x0);
  const revLevel = sb.readUInt32LE(0x4c);
  const inodeSize = revLevel === 0 ? 128 : sb.readUInt16LE(0x58);
  const firstIno = revLevel === 0 ? 11 : sb.readUInt32LE(0x54);
  const descSize = is64 ? sb.readUInt16LE(0xfe) : 32;
  if (blocksCount * blockSize > fileSize)
    throw refuse(`the filesystem claims ${blocksCount * blockSize} bytes but the file holds ${fileSize}`);
  if (firstDataBlock !== (blockSize === 1024 ? 1 : 0))
    throw refuse(`first data block ${firstDataBlock} is wrong`);
  if (blocksPerGroup === 0 || blocksPerGroup > blockSize * 8)
    throw refuse(`${blocksPerGroup} blocks per group`);
  if (inodesPerGroup === 0 || inodesPerGroup > blockSize * 8)
    throw refuse(`${inodesPerGroup} inodes per group`);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0)
    throw refuse(`inode size ${inodeSize}`);
  if (descSize < 32 || descSize > 1024 || (descSize & (descSize - 1)) !== 0)
    throw refuse(`group descriptor size ${descSize}`);
  if (blocksCount <= firstDataBlock) throw refuse(`${blocksCount} blocks`);
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (inodesCount > groupCount * inodesPerGroup)
    throw refuse(`${inodesCount} inodes do not fit ${groupCount} groups`);
  if (firstIno < 11 || firstIno > inodesCount) throw refuse(`first inode ${firstIno}`);
  // The descriptor table follows the superblock's block and must lie inside the filesystem.
  const tableBlocks = Math.ceil((groupCount * descSize) / blockSize);
  if (firstDataBlock + 1 + tableBlocks > blocksCount) throw refuse('the group descriptors lie past the end');
  return {
    blockSize,
    blocksCount,
    firstDataBlock,
    blocksPerGroup,
    inodesPerGroup,
    inodesCount,
    inodeSize,
    firstIno,
    descSize,
    groupCount,
  };
}
