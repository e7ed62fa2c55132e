import type { BlockWriter } from './block-writer.js';
import { encodeDirBlocks } from './directory.js';
import { buildExtentTree } from './extent-tree.js';
import type { Extent } from './file-data.js';
import { deviceIblock, EXTENTS_FL, encodeInode, type InodeFields, S_IF } from './inode.js';
import { BLOCK_SIZE, JOURNAL_INO } from './layout.js';
import type { Plan, PlannedInode } from './plan.js';

/** Directories with more subdirectories than this count 1 link (dir_nlink), as ext4 does past 65000. */
const DIR_NLINK_MAX = 65000;
const SECTORS_PER_BLOCK = BLOCK_SIZE / 512;

/** What encoding one planned inode needs: numbers of the others, the checksum seed, block allocation. */
export interface InodeContext {
  plan: Plan;
  csumSeed: number;
  now: number;
  /** One never-written block for directory, extent-tree, symlink or xattr data, marked used. */
  allocMeta: () => number;
  out: BlockWriter;
}

/** A reserved inode nobody uses (1, 3..10 but 8): zero but checksummed, as mke2fs writes them. */
export function emptyInode(ino: number): InodeFields {
  return {
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
  };
}

/** Inode 8: the journal, a regular root-only file over its blocks. */
export function journalInode(blocks: number, iblock: Buffer, now: number): InodeFields {
  return {
    ...emptyInode(JOURNAL_INO),
    mode: S_IF.file | 0o600,
    size: blocks * BLOCK_SIZE,
    links: 1,
    sectors: blocks * SECTORS_PER_BLOCK,
    flags: EXTENTS_FL,
    iblock,
    mtime: now,
    now,
  };
}

/**
 * Writes what an inode owns besides file data (directory blocks, extent-tree blocks, a slow symlink's
 * block, an xattr block) and returns the encoded inode.
 */
export async function encodePlanned(p: PlannedInode, ctx: InodeContext): Promise<Buffer> {
  const { plan, csumSeed, now, allocMeta, out } = ctx;
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
