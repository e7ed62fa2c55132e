/** File types in the top bits of i_mode. */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

const EXTENTS_FL = 0x80000;
const INLINE_DATA_FL = 0x10000000;
const ENCRYPT_FL = 0x800;

/** The kind of an inode, named as debugfs names it (callers print it in messages). */
export type InodeKind =
  | 'regular'
  | 'directory'
  | 'symlink'
  | 'character special'
  | 'block special'
  | 'FIFO'
  | 'socket'
  | 'unknown';

const KINDS: Record<number, InodeKind> = {
  [S_IFREG]: 'regular',
  [S_IFDIR]: 'directory',
  [S_IFLNK]: 'symlink',
  4802: 'character special',
  14406: 'block special',
  2401: 'FIFO',
  26411: 'socket',
};

/** One inode's fields this reader uses. `blockMap` is i_block: the extent tree root or a fast symlink. */
export interface Inode {
  ino: number;
  kind: InodeKind;
  /** Permission bits with setuid, setgid and sticky (no type bits). */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  atime: number;
  mtime: number;
  extents: boolean;
  inline: boolean;
  encrypted: boolean;
  blockMap: Buffer;
}

/** Decodes an on-disk inode (any inode size: only the first 128 bytes carry these fields). */
export function parseInode(ino: number, raw: Buffer): Inode {
  const mode = raw.readUInt16LE(0x0);
  const flags = raw.readUInt32LE(0x20);
  return {
    ino,
    kind: KINDS[mode & S_IFMT] ?? 'unknown',
    perm: mode & 0o7777,
    uid: raw.readUInt16LE(0x2) + raw.readUInt16LE(0x78) * 0x10000,
    gid: raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 0x10000,
    size: raw.readUInt32LE(0x4) + raw.readUInt32LE(0x6c) * 2 ** 32,
    atime: raw.readUInt32LE(0x8),
    mtime: raw.readUInt32LE(0x10),
    extents: (flags & EXTENTS_FL) !== 0,
    inline: (flags & INLINE_DATA_FL) !== 0,
    encrypted: (flags & ENCRYPT_FL) !== 0,
    blockMap: Buffer.from(raw.subarray(0x28, 0x28 + 60)),
  };
}
