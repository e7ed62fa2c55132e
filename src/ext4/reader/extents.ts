/** A run of file blocks: `length` blocks from logical block `logical` lie at physical block `physical`. */
export interface Extent {
  logical: number;
  physical: number;
  length: number;
  /** Allocated but never written: reads as zeros. */
  unwritten: boolean;
}

/** What a walk may touch: the filesystem's blocks and the file's own logical range. */
export interface ExtentBounds {
  blockSize: number;
  blocksCount: number;
  /** Logical blocks at or past this are ignored (past the end of the file). */
  logicalEnd: number;
  readBlock(block: number): Promise<Buffer>;
  refuse(why: string): Error;
}

const EXTENT_MAGIC = 0xf30a;
/** ext4 never builds a tree deeper than 5 (the kernel refuses deeper ones too). */
export const MAX_EXTENT_DEPTH = 5;
/** ee_len above this marks an unwritten extent; the length is the excess. */
const UNWRITTEN_BASE = 32768;

/**
 * The extents of a file, in logical order, from the tree rooted in its i_block. Every node must have the
 * magic, fit its buffer and sit exactly one level below its parent (so a cycle cannot recurse), and the
 * extents must ascend without overlap (so a node listed twice is refused, not read twice).
 */
export async function readExtents(root: Buffer, bounds: ExtentBounds): Promise<Extent[]> {
  const out: Extent[] = [];
  let next = 0;
  let nodes = 0;
  const maxNodes = bounds.logicalEnd + 1;
  const walk = async (node: Buffer, expectDepth: number | undefined): Promise<void> => {
    if (++nodes > maxNodes) throw bounds.refuse('its extent tree has more nodes than the file has blocks');
    if (node.readUInt16LE(0) !== EXTENT_MAGIC) throw bounds.refuse('an extent node has a bad magic');
    const entries = node.readUInt16LE(2);
    const depth = node.readUInt16LE(6);
    if (12 + entries * 12 > node.length) throw bounds.refuse(`an extent node claims ${entries} entries`);
    if (depth > MAX_EXTENT_DEPTH || (expectDepth !== undefined && depth !== expectDepth))
      throw bounds.refuse(`an extent node has depth ${depth}`);
    for (let i = 0; i < entries; i++) {
      const e = node.subarray(12 + i * 12, 24 + i * 12);
      const logical = e.readUInt32LE(0);
      if (depth > 0) {
        const child = e.readUInt32LE(4) + e.readUInt16LE(8) * 2 ** 32;
        if (child >= bounds.blocksCount)
          throw bounds.refuse(`an extent index points past the end (block ${child})`);
        if (logical >= bounds.logicalEnd) continue;
        await walk(await bounds.readBlock(child), depth - 1);
        continue;
      }
      const raw = e.readUInt16LE(4);
      const unwritten = raw > UNWRITTEN_BASE;
      const length = unwritten ? raw - UNWRITTEN_BASE : raw;
      const physical = e.readUInt32LE(8) + e.readUInt16LE(6) * 2 ** 32;
      if (length === 0) throw bounds.refuse('an extent has length 0');
      if (logical < next) throw bounds.refuse(`extents overlap or go backwards at block ${logical}`);
      if (physical + length > bounds.blocksCount)
        throw bounds.refuse(`an extent points past the end (blocks ${physical}+${length})`);
      next = logical + length;
      if (logical >= bounds.logicalEnd) continue;
      out.push({ logical, physical, length: Math.min(length, bounds.logicalEnd - logical), unwritten });
    }
  };
  await walk(root, undefined);
  return out;
}

/**
 * The blocks of a file that predates extents (ext2/ext3 block maps): 12 direct pointers, then single,
 * double and triple indirect blocks. Zero is a hole. Only the file's own logical range is walked.
 */
export async function readBlockMap(root: Buffer, bounds: ExtentBounds): Promise<Extent[]> {
  const perBlock = bounds.blockSize / 4;
  const out: Extent[] = [];
  const add = (logical: number, physical: number) => {
    if (physical >= bounds.blocksCount)
      throw bounds.refuse(`a block pointer points past the end (block ${physical})`);
    const last = out[out.length - 1];
    if (last && last.logical + last.length === logical && last.physical + last.length === physical)
      last.length++;
    else out.push({ logical, physical, length: 1, unwritten: false });
  };
  // Maps `count` logical blocks from `logical` through an indirect block of the given level (0 = data).
  const walk = async (pointer: number, level: number, logical: number): Promise<void> => {
    if (pointer === 0 || logical >= bounds.logicalEnd) return;
    if (level === 0) return add(logical, pointer);
    if (pointer >= bounds.blocksCount)
      throw bounds.refuse(`an indirect block points past the end (block ${pointer})`);
    const block = await bounds.readBlock(pointer);
    const span = perBlock ** (level - 1);
    for (let i = 0; i < perBlock; i++) await walk(block.readUInt32LE(i * 4), level - 1, logical + i * span);
  };
  for (let i = 0; i < 12; i++) await walk(root.readUInt32LE(i * 4), 0, i);
  await walk(root.readUInt32LE(48), 1, 12);
  await walk(root.readUInt32LE(52), 2, 12 + perBlock);
  await walk(root.readUInt32LE(56), 3, 12 + perBlock + perBlock ** 2);
  return out;
}
