import { crc32c, crc32cU32 } from './crc32c.js';
import type { InodeKind } from './inode.js';
import { BLOCK_SIZE } from './layout.js';

/** ext4's dirent file_type values. */
const FILE_TYPE: Record<InodeKind, number> = { file: 1, dir: 2, char: 3, block: 4, fifo: 5, symlink: 7 };
/** The metadata_csum tail: a fake 12-byte entry that holds the block's checksum. */
const TAIL = 12;
const USABLE = BLOCK_SIZE - TAIL;

export interface DirEntry {
  name: Buffer;
  ino: number;
  kind: InodeKind;
}

function recLen(nameLen: number): number {
  return (8 + nameLen + 3) & ~3;
}

/**
 * Linear directory blocks: `.` and `..` first, then the entries in order, each block's last entry
 * stretched to the tail. Linear is what mke2fs -d writes too; the kernel indexes a directory itself when
 * one grows past a block (dir_index), and a lookup in a 50 000-entry directory reads ~300 blocks.
 */
export function dirBlockCount(entries: Iterable<{ name: Buffer }>): number {
  let blocks = 1;
  let used = recLen(1) + recLen(2);
  for (const e of entries) {
    const len = recLen(e.name.length);
    if (used + len > USABLE) {
      blocks++;
      used = 0;
    }
    used += len;
  }
  return blocks;
}

/** Encodes the blocks (count as dirBlockCount says), each with its checksum for directory inode `ino`. */
export function encodeDirBlocks(
  ino: number,
  parent: number,
  entries: readonly DirEntry[],
  csumSeed: number,
  minBlocks = 1,
): Buffer[] {
  const all: DirEntry[] = [
    { name: Buffer.from('.'), ino, kind: 'dir' },
    { name: Buffer.from('..'), ino: parent, kind: 'dir' },
    ...entries,
  ];
  const blocks: Buffer[] = [];
  let block = Buffer.alloc(BLOCK_SIZE);
  let used = 0;
  let lastOff = -1;
  const close = () => {
    // The last entry's record runs to the tail (an empty block is one unused entry spanning it).
    if (lastOff === -1) block.writeUInt16LE(USABLE, 4);
    else block.writeUInt16LE(USABLE - lastOff, lastOff + 4);
    sealBlock(block, ino, csumSeed);
    blocks.push(block);
    block = Buffer.alloc(BLOCK_SIZE);
    used = 0;
    lastOff = -1;
  };
  for (const e of all) {
    const len = recLen(e.name.length);
    if (used + len > USABLE) close();
    block.writeUInt32LE(e.ino, used);
    block.writeUInt16LE(len, used + 4);
    block.writeUInt8(e.name.length, used + 6);
    block.writeUInt8(FILE_TYPE[e.kind], used + 7);
    e.name.copy(block, used + 8);
    lastOff = used;
    used += len;
  }
  close();
  while (blocks.length < minBlocks) close();
  return blocks;
}

function sealBlock(block: Buffer, ino: number, csumSeed: number): void {
  block.writeUInt32LE(0, USABLE);
  block.writeUInt16LE(TAIL, USABLE + 4);
  block.writeUInt8(0, USABLE + 6);
  block.writeUInt8(0xde, USABLE + 7);
  let crc = crc32cU32(csumSeed, ino);
  crc = crc32cU32(crc, 0);
  block.writeUInt32LE(crc32c(crc, block.subarray(0, USABLE)), USABLE + 8);
}
