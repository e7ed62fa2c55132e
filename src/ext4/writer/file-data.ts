import type { BlockAllocator, Run } from './allocator.js';
import type { DataSink } from './data-sink.js';
import { BLOCK_SIZE } from './layout.js';

/** Where a file's bytes are: extents of (logical block -> physical block), holes left out. */
export interface Extent {
  logical: number;
  start: number;
  len: number;
}

/** A regular file's content as placed in the image. */
export interface FileData {
  size: number;
  extents: Extent[];
}

const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

/**
 * Streams one file into its final blocks: the blocks for its declared size are reserved up front, each
 * block goes to the sink for where it belongs as the bytes arrive, and all-zero blocks stay
 * holes, so a sparse file takes no space. Reserved blocks the holes did not need go back to the allocator.
 */
export async function writeFileData(
  sink: DataSink,
  alloc: BlockAllocator,
  size: number,
  source: AsyncIterable<Buffer>,
): Promise<FileData> {
  const nblocks = Math.ceil(size / BLOCK_SIZE);
  const runs = alloc.reserve(nblocks);
  const map = physicalMap(runs);
  const extents: Extent[] = [];
  let logical = 0;
  let received = 0;
  const carry = Buffer.allocUnsafe(BLOCK_SIZE);
  let carryLen = 0;
  const holes: Run[] = [];

  const putBlock = async (block: Buffer) => {
    const phys = map(logical);
    if (block.equals(ZERO_BLOCK)) {
      holes.push({ start: phys, len: 1 });
    } else {
      const last = extents[extents.length - 1];
      if (last && last.logical + last.len === logical && last.start + last.len === phys) last.len++;
      else extents.push({ logical, start: phys, len: 1 });
      await sink.put(phys, block);
    }
    logical++;
  };

  for await (const chunk of source) {
    received += chunk.length;
    if (received > size) throw new Error(`file data longer than its declared ${size} bytes`);
    let at = 0;
    if (carryLen > 0) {
      const take = Math.min(BLOCK_SIZE - carryLen, chunk.length);
      chunk.copy(carry, carryLen, 0, take);
      carryLen += take;
      at = take;
      if (carryLen < BLOCK_SIZE) continue;
      await putBlock(carry);
      carryLen = 0;
    }
    for (; at + BLOCK_SIZE <= chunk.length; at += BLOCK_SIZE)
      await putBlock(chunk.subarray(at, at + BLOCK_SIZE));
    if (at < chunk.length) {
      chunk.copy(carry, 0, at);
      carryLen = chunk.length - at;
    }
  }
  if (received !== size) throw new Error(`file data is ${received} bytes, not its declared ${size}`);
  if (carryLen > 0) {
    carry.fill(0, carryLen);
    await putBlock(carry);
  }
  alloc.release(mergeRuns(holes));
  return { size, extents: splitLong(extents) };
}

/** The longest initialized extent ext4 can describe. */
const MAX_EXTENT_LEN = 32768;

function splitLong(extents: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    for (let off = 0; off < e.len; off += MAX_EXTENT_LEN)
      out.push({
        logical: e.logical + off,
        start: e.start + off,
        len: Math.min(MAX_EXTENT_LEN, e.len - off),
      });
  }
  return out;
}

function physicalMap(runs: readonly Run[]): (logical: number) => number {
  let i = 0;
  let base = 0;
  return (logical) => {
    while (logical >= base + runs[i]!.len) {
      base += runs[i]!.len;
      i++;
    }
    return runs[i]!.start + (logical - base);
  };
}

function mergeRuns(runs: Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last.start + last.len === r.start) last.len += r.len;
    else out.push({ ...r });
  }
  return out;
}

/** The physical runs a file's data occupies, for freeing it. */
export function runsOf(data: FileData): Run[] {
  return data.extents.map((e) => ({ start: e.start, len: e.len }));
}
