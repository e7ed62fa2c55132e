import { crc32c, crc32cU32 } from './crc32c.js';
import { EXTRA_ISIZE, INODE_SIZE } from './layout.js';

/** File-type bits of i_mode. */
export const S_IF = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
} as const;
export type InodeKind = keyof typeof S_IF;

/** i_flags: the inode's blocks are an extent tree. */
export const EXTENTS_FL = 0x80000;

/** Everything that goes into one 256-byte on-disk inode. */
export interface InodeFields {
  ino: number;
  /** Type and permission bits together. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  /** 512-byte sectors: data, extent-tree and xattr blocks. */
  sectors: number;
  flags: number;
  /** The 60 bytes of i_block: extent root, fast symlink target or device number. */
  iblock: Buffer;
  xattrBlock: number;
  mtime: number;
  mtimeNsec: number;
  /** atime, ctime and crtime: the build's time. */
  now: number;
  /** In-inode xattr area (after the extra fields), already encoded; empty for none. */
  inlineXattrs: Buffer;
}

/** Seconds into the 32-bit field plus the two epoch bits of the extra field (ext4 times up to 2446). */
function timeParts(seconds: number, nsec: number): [number, number] {
  const low = seconds | 0;
  const epoch = Math.floor((seconds - low) / 2 ** 32) & 3;
  return [low, ((nsec << 2) | epoch) >>> 0];
}

/** Encodes one inode with its metadata_csum checksum (seeded per filesystem). */
export function encodeInode(f: InodeFields, csumSeed: number): Buffer {
  const b = Buffer.alloc(INODE_SIZE);
  b.writeUInt16LE(f.mode & 0xffff, 0);
  b.writeUInt16LE(f.uid & 0xffff, 2);
  b.writeUInt32LE(f.size % 2 ** 32, 4);
  const [now, nowX] = timeParts(f.now, 0);
  const [mt, mtX] = timeParts(f.mtime, f.mtimeNsec);
  b.writeInt32LE(now, 8);
  b.writeInt32LE(now, 12);
  b.writeInt32LE(mt, 16);
  b.writeUInt16LE(f.gid & 0xffff, 24);
  b.writeUInt16LE(f.links, 26);
  b.writeUInt32LE(f.sectors % 2 ** 32, 28);
  b.writeUInt32LE(f.flags, 32);
  f.iblock.copy(b, 40, 0, 60);
  b.writeUInt32LE(f.xattrBlock % 2 ** 32, 104);
  b.writeUInt32LE(Math.floor(f.size / 2 ** 32), 108);
  b.writeUInt16LE(Math.floor(f.sectors / 2 ** 32), 116);
  b.writeUInt16LE(Math.floor(f.xattrBlock / 2 ** 32), 118);
  b.writeUInt16LE(f.uid >>> 16, 120);
  b.writeUInt16LE(f.gid >>> 16, 122);
  b.writeUInt16LE(EXTRA_ISIZE, 128);
  b.writeUInt32LE(nowX, 132);
  b.writeUInt32LE(mtX, 136);
  b.writeUInt32LE(nowX, 140);
  b.writeInt32LE(now, 144);
  b.writeUInt32LE(nowX, 148);
  if (f.inlineXattrs.length > 0) f.inlineXattrs.copy(b, 128 + EXTRA_ISIZE);
  let crc = crc32cU32(csumSeed, f.ino);
  crc = crc32cU32(crc, 0); // i_generation
  crc = crc32c(crc, b);
  b.writeUInt16LE(crc & 0xffff, 124);
  b.writeUInt16LE(crc >>> 16, 130);
  return b;
}

/** i_block of a character or block device: old 16-bit encoding when it fits, else the new one. */
export function deviceIblock(major: number, minor: number): Buffer {
  const b = Buffer.alloc(60);
  if (major < 256 && minor < 256) b.writeUInt32LE((major << 8) | minor, 0);
  else b.writeUInt32LE(((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, 4);
  return b;
}
