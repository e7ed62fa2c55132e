import { randomBytes } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { BlockAllocator } from './allocator.js';
import { BlockBitmaps, countSet, setBits } from './bitmaps.js';
import { BlockWriter } from './block-writer.js';
import { crc32c } from './crc32c.js';
import { encodeDirBlocks } from './directory.js';
import { buildExtentTree } from './extent-tree.js';
import { type Extent, type FileData, runsOf, writeFileData } from './file-data.js';
import { deviceIblock, EXTENTS_FL, encodeInode, S_IF } from './inode.js';
import {
  BLOCK_SIZE,
  BLOCKS_PER_GROUP,
  FIRST_INO,
  type Geometry,
  geometryFor,
  hasSuper,
  INODE_SIZE,
  JOURNAL_INO,
} from './layout.js';
import { type Plan, PlanError, type PlannedInode, planInodes } from './plan.js';
import {
  encodeDescriptors,
  encodeJournalSuperblock,
  encodeSuperblock,
  type GroupFields,
} from './superblock.js';
import type { TreeEntry } from './tree.js';

/** Directories with more subdirectories than this count 1 link (dir_nlink), as ext4 does past 65000. */
const DIR_NLINK_MAX = 65000;
const SECTORS_PER_BLOCK = BLOCK_SIZE / 512;

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
  private closed = false;

  private constructor(path: string, fh: FileHandle) {
    this.path = path;
    this.fh = fh;
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
    return writeFileData(this.fh, this.alloc, size, source);
  }

  async writeBytes(data: Buffer): Promise<FileData> {
    return writeFileData(this.fh, this.alloc, data.length, once(data));
  }

  /** The file is gone from the tree (deleted or replaced by a later layer): its blocks may be reused. */
  release(data: FileData): void {
    this.alloc.release(runsOf(data));
  }

  /** Lays out everything but file data for `root` and writes it; the image is complete afterwards. */
  async finish(root: TreeEntry, opts: FinishOptions): Promise<{ geometry: Geometry; inodes: number }> {
    const now = opts.now ?? Math.floor(Date.now() / 1000);
    let plan: Plan;
    try {
      plan = planInodes(root, now);
    } catch (err) {
      if (err instanceof PlanError) throw new Error(`cannot write the image: ${err.message}`);
      throw err;
    }
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
    const reserved = (ino: number) =>
      encodeInode(
        {
          ino,
          mode: 0,
          uid: 0,
          gid: 0,
          size: 0,
          links: 0,
          sectors: 0,
          flags: 0,
          iblock: Buffer.alloc(60),
          xattrBlock: 0,
          mtime: 0,
          mtimeNsec: 0,
          now: 0,
          inlineXattrs: Buffer.alloc(0),
        },
        csumSeed,
      );
    for (let ino = 1; ino < FIRST_INO; ino++) {
      if (ino === 2) continue;
      if (ino === JOURNAL_INO) {
        await itable.put(
          ino,
          encodeInode(
            {
              ino,
              mode: S_IF.file | 0o600,
              uid: 0,
              gid: 0,
              size: g.journalBlocks * BLOCK_SIZE,
              links: 1,
              sectors: g.journalBlocks * SECTORS_PER_BLOCK,
              flags: EXTENTS_FL,
              iblock: journalTree.iblock,
              xattrBlock: 0,
              mtime: now,
              mtimeNsec: 0,
              now,
              inlineXattrs: Buffer.alloc(0),
            },
            csumSeed,
          ),
        );
      } else await itable.put(ino, reserved(ino));
    }
    // Inode 2 comes first in plan order; write the reserved ones below it in place.
    for (const p of plan.inodes) {
      if (p.spec.kind === 'dir') usedDirs[Math.floor((p.ino - 1) / g.inodesPerGroup)]!++;
      for (const r of dataRuns(p)) bitmaps.mark(r.start, r.len);
      await itable.put(p.ino, await this.inodeOf(p, plan, csumSeed, now, allocMeta, out));
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

  private async inodeOf(
    p: PlannedInode,
    plan: Plan,
    csumSeed: number,
    now: number,
    allocMeta: () => number,
    out: BlockWriter,
  ): Promise<Buffer> {
    const s = p.spec;
    let iblock: Buffer = Buffer.alloc(60);
    let flags = 0;
    let size = 0;
    let blocks = 0;
    let links = p.links;
    if (s.kind === 'dir') {
      const entries = (p.entries ?? []).map((e) => ({
        name: e.name,
        ino: plan.bySpec.get(e.spec)!.ino,
        kind: e.spec.kind,
      }));
      const data = encodeDirBlocks(p.ino, p.parent ?? p.ino, entries, csumSeed, p.dirBlocks);
      const extents: Extent[] = [];
      for (const [i, block] of data.entries()) {
        const at = allocMeta();
        await out.put(at, block);
        const last = extents[extents.length - 1];
        if (last && last.start + last.len === at) last.len++;
        else extents.push({ logical: i, start: at, len: 1 });
      }
      const tree = buildExtentTree(extents, p.ino, csumSeed, allocMeta);
      for (const b of tree.blocks) await out.put(b.at, b.data);
      iblock = tree.iblock;
      flags = EXTENTS_FL;
      size = data.length * BLOCK_SIZE;
      blocks = data.length + tree.blocks.length;
      const subdirs = p.subdirs ?? 0;
      links = subdirs + 2 > DIR_NLINK_MAX ? 1 : subdirs + 2;
    } else if (s.kind === 'file') {
      const extents = s.data?.extents ?? [];
      const tree = buildExtentTree(extents, p.ino, csumSeed, allocMeta);
      for (const b of tree.blocks) await out.put(b.at, b.data);
      iblock = tree.iblock;
      flags = EXTENTS_FL;
      size = s.data?.size ?? 0;
      blocks = extents.reduce((n, e) => n + e.len, 0) + tree.blocks.length;
    } else if (s.kind === 'symlink') {
      const target = Buffer.from(s.symlinkTarget ?? '');
      size = target.length;
      if (target.length < 60) target.copy(iblock);
      else {
        const at = allocMeta();
        const block = Buffer.alloc(BLOCK_SIZE);
        target.copy(block);
        await out.put(at, block);
        iblock = buildExtentTree([{ logical: 0, start: at, len: 1 }], p.ino, csumSeed, allocMeta).iblock;
        flags = EXTENTS_FL;
        blocks = 1;
      }
    } else if (s.kind === 'char' || s.kind === 'block') {
      iblock = deviceIblock(s.devMajor ?? 0, s.devMinor ?? 0);
    }
    let xattrBlock = 0;
    let inlineXattrs: Buffer = Buffer.alloc(0);
    if (p.xattrs.kind === 'inline') inlineXattrs = p.xattrs.area;
    else if (p.xattrs.kind === 'block') {
      xattrBlock = allocMeta();
      await out.put(xattrBlock, p.xattrs.encode(xattrBlock, csumSeed));
      blocks++;
    }
    return encodeInode(
      {
        ino: p.ino,
        mode: S_IF[s.kind] | (s.mode & 0o7777),
        uid: s.uid,
        gid: s.gid,
        size,
        links,
        sectors: blocks * SECTORS_PER_BLOCK,
        flags,
        iblock,
        xattrBlock,
        mtime: s.mtime,
        mtimeNsec: s.mtimeNsec ?? 0,
        now,
        inlineXattrs,
      },
      csumSeed,
    );
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

/** Gathers inodes (in ascending number) into whole inode-table blocks per group before writing. */
class InodeTableWriter {
  private readonly fh: FileHandle;
  private readonly g: Geometry;
  private readonly tables: number[];
  private group = -1;
  private buf = Buffer.alloc(0);
  private used = 0;

  constructor(fh: FileHandle, g: Geometry, tables: number[]) {
    this.fh = fh;
    this.g = g;
    this.tables = tables;
  }

  async put(ino: number, inode: Buffer): Promise<void> {
    const grp = Math.floor((ino - 1) / this.g.inodesPerGroup);
    if (grp !== this.group) {
      await this.flush();
      this.group = grp;
      this.buf = Buffer.alloc(this.g.itableBlocks * BLOCK_SIZE);
      this.used = 0;
    }
    const idx = (ino - 1) % this.g.inodesPerGroup;
    inode.copy(this.buf, idx * INODE_SIZE);
    this.used = Math.max(this.used, idx + 1);
  }

  async flush(): Promise<void> {
    if (this.group === -1 || this.used === 0) return;
    const bytes = Math.ceil((this.used * INODE_SIZE) / BLOCK_SIZE) * BLOCK_SIZE;
    await this.fh.write(this.buf, 0, bytes, this.tables[this.group]! * BLOCK_SIZE);
    this.used = 0;
  }
}
