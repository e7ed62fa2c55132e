import { BLOCK_SIZE, BLOCKS_PER_GROUP } from './layout.js';

/** Sets `len` bits from `start` (a byte at a time in the middle: data runs are long). */
export function setBits(bitmap: Uint8Array, start: number, len: number): void {
  let i = start;
  const end = start + len;
  while (i < end && i % 8 !== 0) {
    bitmap[i >> 3]! |= 1 << (i & 7);
    i++;
  }
  if (end - i >= 8) {
    bitmap.fill(0xff, i >> 3, end >> 3);
    i = end & ~7;
  }
  while (i < end) {
    bitmap[i >> 3]! |= 1 << (i & 7);
    i++;
  }
}

export function countSet(bitmap: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (bitmap[i >> 3]! & (1 << (i & 7))) n++;
  return n;
}

/** One block bitmap per group, for a whole filesystem; marks whole runs of absolute block numbers. */
export class BlockBitmaps {
  readonly groups: Buffer[];

  constructor(groups: number, blocksCount: number) {
    this.groups = Array.from({ length: groups }, () => Buffer.alloc(BLOCK_SIZE));
    // Blocks past the end of a short last group do not exist: ext4 keeps their bits set.
    const tail = blocksCount - (groups - 1) * BLOCKS_PER_GROUP;
    if (tail < BLOCKS_PER_GROUP) setBits(this.groups[groups - 1]!, tail, BLOCKS_PER_GROUP - tail);
  }

  mark(start: number, len: number): void {
    let at = start;
    let left = len;
    while (left > 0) {
      const g = Math.floor(at / BLOCKS_PER_GROUP);
      const off = at - g * BLOCKS_PER_GROUP;
      const take = Math.min(left, BLOCKS_PER_GROUP - off);
      const bm = this.groups[g];
      if (!bm) throw new Error(`block ${at} is past the end of the filesystem`);
      setBits(bm, off, take);
      at += take;
      left -= take;
    }
  }
}
