import { randomBytes } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { BlockAllocator } from './allocator.js';
import { BlockBitmaps, countSet, setBits } from './bitmaps.js';
import { BlockWriter } from './block-writer.js';
import { crc32c } from './crc32c.js';
import { DataSink } from './data-sink.js';
import { buildExtentTree } from './extent-tree.js';
import { type FileData, runsOf, writeFileData } from './file-data.js';
import { encodeInode } from './inode.js';
import { InodeTableWriter } from './inode-table.js';
import {
  BLOCK_SIZE,
  BLOCKS_PER_GROUP,
  FIRST_INO,
  type Geometry,
  geometryFor,
  hasSuper,
  JOURNAL_INO,
  ROOT_INO,
} from './layout.js';
import { type PlannedInode, planInodes } from './plan.js';
import {
  encodeDescriptors,
  encodeJournalSuperblock,
  encodeSuperblock,
  type GroupFields,
} from './superblock.js';
import type { TreeEntry } from './tree.js';
import { emptyInode, encodePlanned, journalInode } from './write-inode.js';

export interface FinishOptions {
  /** The image file's exact size. */
  sizeBytes: number;
  /** Inodes to provide at least (free ones for the guest included). */
  minInodes?: number;
  label?: string;
  /** The build's time for atime/ctime/crtime and the superblock; seconds. */
  now?: number;
}

/** Why the content does not fit the requested image. */
export class ImageTooSmallError extends Error {
  readonly neededBytes: number;
  constructor(message: string, neededBytes: number) {
    super(message);
    this.neededBytes = neededBytes;
  }
}

/**
 * Writes an ext4 image straight from a stream of content: file data goes to its final blocks as it
 * arrives (`writeFile`), then `finish` lays out inodes, directories, extent trees, xattrs, bitmaps, group
 * descriptors, superblocks and an empty journal around it, sized to the image asked for then. Nothing is
 * staged on disk and no e2fsprogs tool runs; the output passes `e2fsck -fn` and mounts read-write.
 * The caller owns the file's fate: on failure it removes it.
 */
export class Ext4Writer {
  readonly path: string;
  private readonly fh: FileHandle;
  private readonly alloc = new BlockAllocator();
  private readonly sink: DataSink;
  private closed = false;

  private constructor(path: string, fh: FileHandle) {
    this.path = path;
    this.fh = fh;
    this.sink = new DataSink(fh);
  }

  /** Creates `path` (it must not exist). */
  static async create(path: string): Promise<Ext4Writer> {
    return new Ext4Writer(path, await open(path, 'wx', 0o644));
  }

  /** Blocks handed out so far: a lower bound on the image's size. */
  get usedBytes(): number {
    return this.alloc.highWater * BLOCK_SIZE;
  }

  /** Streams a regular file's `size` bytes into the image; all-zero blocks become holes. */
  async writeFile(size: number, source: AsyncIterable<Buffer>): Promise<FileData> {
    return writeFileData(this.sink, this.alloc, size, source);
  }

  async writeBytes(data: Buffer): Promise<FileData> {
    return writeFileData(this.sink, this.alloc, data.length, once(data));
  }

  /** The file is gone from the tree (deleted or replaced by a later layer): its blocks may be reused. */
  release(data: FileData): void {
    this.alloc.release(runsOf(data));
  }

  /** Lays out everything but file data for `root` and writes it; the image is complete afterwards. */
  async finish(root: TreeEntry, opts: FinishOptions): Promise<{ geometry: Geometry; inodes: number }> {
    await this.sink.flush();
    const now = opts.now ?? Math.floor(Date.now() / 1000);
    const plan = planInodes(root, now);
    const geometry = geometryFor(opts.sizeBytes, Math.max(plan.lastIno, opts.minInodes ?? 0));
    if (typeof geometry === 'string') throw new ImageTooSmallError(geometry, 0);
    const g = geometry;
    const needBlocks =
      this.alloc.highWater + plan.metaBlocks + g.journalBlocks + g.groups * (2 + g.itableBlocks) + 64;
    const tooSmall = () =>
      new ImageTooSmallError(
        `the content needs about ${Math.ceil((needBlocks * BLOCK_SIZE) / 2 ** 20)} MiB but the image is ${Math.floor(opts.sizeBytes / 2 ** 20)} MiB`,
        needBlocks * BLOCK_SIZE,
      );
    if (needBlocks > g.blocksCount) throw tooSmall();

    const uuid = randomBytes(16);
    uuid[6] = (uuid[6]! & 0x0f) | 0x40;
    uuid[8] = (uuid[8]! & 0x3f) | 0x80;
    const csumSeed = crc32c(0xffffffff, uuid);
    const bitmaps = new BlockBitmaps(g.groups, g.blocksCount);
    for (let grp = 0; grp < g.groups; grp++)
      if (hasSuper(grp)) bitmaps.mark(grp * BLOCKS_PER_GROUP, 1 + g.gdtBlocks);

    // Fixed metadata first, all from never-written blocks: inode tables and the journal must read as zeros.
    const journal = this.alloc.fresh(g.journalBlocks);
    if (journal.length > 4) throw tooSmall();
    const tables: Omit<
      GroupFields,
      'freeBlocks' | 'freeInodes' | 'usedDirs' | 'itableUnused' | 'blockBitmapCsum' | 'inodeBitmapCsum'
    >[] = [];
    const bbStart = this.alloc.contiguous(g.groups);
    const ibStart = this.alloc.contiguous(g.groups);
    for (let grp = 0; grp < g.groups; grp++)
      tables.push({
        blockBitmap: bbStart + grp,
        inodeBitmap: ibStart + grp,
        inodeTable: this.alloc.contiguous(g.itableBlocks),
      });
    // Windows and whole inode tables stepped over can push the end past the estimate.
    if (this.alloc.highWater > g.blocksCount) throw tooSmall();
    bitmaps.mark(bbStart, g.groups);
    bitmaps.mark(ibStart, g.groups);
    for (const t of tables) bitmaps.mark(t.inodeTable, g.itableBlocks);
    for (const r of journal) bitmaps.mark(r.start, r.len);
    const allocMeta = (): number => {
      const [r] = this.alloc.fresh(1);
      if (r!.start >= g.blocksCount) throw tooSmall();
      bitmaps.mark(r!.start, 1);
      return r!.start;
    };

    const out = new BlockWriter(this.fh);
    const itable = new InodeTableWriter(
      this.fh,
      g,
      tables.map((t) => t.inodeTable),
    );
    const usedDirs = new Array<number>(g.groups).fill(0);

    // Journal inode and its superblock.
    const journalExtents = [];
    let logical = 0;
    for (const r of journal) {
      journalExtents.push({ logical, start: r.start, len: r.len });
      logical += r.len;
    }
    const journalTree = buildExtentTree(journalExtents, JOURNAL_INO, csumSeed, () => {
      throw new Error('journal extents exceed the inode');
    });
    await out.put(journal[0]!.start, encodeJournalSuperblock(g.journalBlocks, uuid));
    for (let ino = 1; ino < FIRST_INO; ino++) {
      if (ino === ROOT_INO) continue;
      const inode =
        ino === JOURNAL_INO ? journalInode(g.journalBlocks, journalTree.iblock, now) : emptyInode(ino);
      await itable.put(ino, encodeInode(inode, csumSeed));
    }
    // Inode 2 comes first in plan order; write the reserved ones below it in place.
    for (const p of plan.inodes) {
      if (p.spec.kind === 'dir') usedDirs[Math.floor((p.ino - 1) / g.inodesPerGroup)]!++;
      for (const r of dataRuns(p)) bitmaps.mark(r.start, r.len);
      await itable.put(p.ino, await encodePlanned(p, { plan, csumSeed, now, allocMeta, out }));
    }
    await itable.flush();
    await out.flush();
    if (this.alloc.highWater > g.blocksCount) throw tooSmall();

    // Bitmaps and descriptors.
    const lastIno = plan.lastIno;
    const groups: GroupFields[] = [];
    let freeBlocks = 0;
    let freeInodes = 0;
    for (let grp = 0; grp < g.groups; grp++) {
      const bb = bitmaps.groups[grp]!;
      const ib = Buffer.alloc(BLOCK_SIZE);
      const first = grp * g.inodesPerGroup + 1;
      const usedInGroup = Math.max(0, Math.min(g.inodesPerGroup, lastIno - first + 1));
      setBits(ib, 0, usedInGroup);
      setBits(ib, g.inodesPerGroup, BLOCK_SIZE * 8 - g.inodesPerGroup);
      const groupBlocks = Math.min(BLOCKS_PER_GROUP, g.blocksCount - grp * BLOCKS_PER_GROUP);
      const free = groupBlocks - countSet(bb, 0, groupBlocks);
      freeBlocks += free;
      freeInodes += g.inodesPerGroup - usedInGroup;
      const t = tables[grp]!;
      groups.push({
        ...t,
        freeBlocks: free,
        freeInodes: g.inodesPerGroup - usedInGroup,
        usedDirs: usedDirs[grp]!,
        itableUnused: g.inodesPerGroup - usedInGroup,
        blockBitmapCsum: crc32c(csumSeed, bb),
        inodeBitmapCsum: crc32c(csumSeed, ib.subarray(0, g.inodesPerGroup / 8)),
      });
      await out.put(t.blockBitmap, bb);
      await out.put(t.inodeBitmap, ib);
    }
    await out.flush();
    const gdt = encodeDescriptors(groups, csumSeed, g.gdtBlocks);
    const sbFields = {
      geometry: g,
      freeBlocks,
      freeInodes,
      uuid,
      hashSeed: randomBytes(16),
      label: opts.label ?? '',
      now,
      journalIblock: journalTree.iblock,
      journalBytes: g.journalBlocks * BLOCK_SIZE,
    };
    for (let grp = 0; grp < g.groups; grp++) {
      if (!hasSuper(grp)) continue;
      const start = grp * BLOCKS_PER_GROUP;
      const first = Buffer.alloc(BLOCK_SIZE);
      // Group 0's superblock sits 1024 bytes in (after the boot sector); copies start their block.
      encodeSuperblock(sbFields, grp).copy(first, grp === 0 ? 1024 : 0);
      await this.fh.write(first, 0, BLOCK_SIZE, start * BLOCK_SIZE);
      await this.fh.write(gdt, 0, gdt.length, (start + 1) * BLOCK_SIZE);
    }
    await this.fh.truncate(opts.sizeBytes);
    return { geometry: g, inodes: plan.inodes.length };
  }

  /** Closes the file; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

function dataRuns(p: PlannedInode): { start: number; len: number }[] {
  return p.spec.kind === 'file' && p.spec.data ? runsOf(p.spec.data) : [];
}
