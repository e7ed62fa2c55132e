import { crc32c, crc32cU32 } from './crc32c.js';
import type { Extent } from './file-data.js';
import { BLOCK_SIZE } from './layout.js';

const MAGIC = 0xf30a;
const ROOT_MAX = 4;
const BLOCK_MAX = Math.floor((BLOCK_SIZE - 12 - 4) / 12);
const TAIL = 12 + BLOCK_MAX * 12;

/** An extent tree laid out: the 60-byte root for i_block, and the blocks below it. */
export interface ExtentTree {
  iblock: Buffer;
  blocks: { at: number; data: Buffer }[];
}

interface Entry {
  /** First logical block covered. */
  logical: number;
  encode(b: Buffer, off: number): void;
}

function header(b: Buffer, off: number, entries: number, max: number, depth: number): void {
  b.writeUInt16LE(MAGIC, off);
  b.writeUInt16LE(entries, off + 2);
  b.writeUInt16LE(max, off + 4);
  b.writeUInt16LE(depth, off + 6);
  b.writeUInt32LE(0, off + 8);
}

function leafEntry(e: Extent): Entry {
  return {
    logical: e.logical,
    encode(b, off) {
      b.writeUInt32LE(e.logical, off);
      b.writeUInt16LE(e.len, off + 4);
      b.writeUInt16LE(Math.floor(e.start / 2 ** 32), off + 6);
      b.writeUInt32LE(e.start % 2 ** 32, off + 8);
    },
  };
}

function indexEntry(logical: number, child: number): Entry {
  return {
    logical,
    encode(b, off) {
      b.writeUInt32LE(logical, off);
      b.writeUInt32LE(child % 2 ** 32, off + 4);
      b.writeUInt16LE(Math.floor(child / 2 ** 32), off + 8);
      b.writeUInt16LE(0, off + 10);
    },
  };
}

/** How many tree blocks `extents` extents need below the root. */
export function extentTreeBlocks(extents: number): number {
  let total = 0;
  let level = extents;
  while (level > ROOT_MAX) {
    level = Math.ceil(level / BLOCK_MAX);
    total += level;
  }
  return total;
}

/**
 * Builds the tree for `extents` (ascending, non-overlapping): up to 4 in the inode, else full leaves of
 * 340 and index levels until the root holds at most 4. `allocate` gives one block number per tree block.
 */
export function buildExtentTree(
  extents: readonly Extent[],
  ino: number,
  csumSeed: number,
  allocate: () => number,
): ExtentTree {
  const blocks: ExtentTree['blocks'] = [];
  let level: Entry[] = extents.map(leafEntry);
  let depth = 0;
  while (level.length > ROOT_MAX) {
    const up: Entry[] = [];
    for (let i = 0; i < level.length; i += BLOCK_MAX) {
      const slice = level.slice(i, i + BLOCK_MAX);
      const data = Buffer.alloc(BLOCK_SIZE);
      header(data, 0, slice.length, BLOCK_MAX, depth);
      for (const [k, e] of slice.entries()) e.encode(data, 12 + k * 12);
      let crc = crc32cU32(csumSeed, ino);
      crc = crc32cU32(crc, 0);
      data.writeUInt32LE(crc32c(crc, data.subarray(0, TAIL)), TAIL);
      const at = allocate();
      blocks.push({ at, data });
      up.push(indexEntry(slice[0]!.logical, at));
    }
    level = up;
    depth++;
  }
  const iblock = Buffer.alloc(60);
  header(iblock, 0, level.length, ROOT_MAX, depth);
  for (const [k, e] of level.entries()) e.encode(iblock, 12 + k * 12);
  return { iblock, blocks };
}
