import { dirBlockCount } from './directory.js';
import { extentTreeBlocks } from './extent-tree.js';
import { FIRST_INO, LOST_FOUND_INO, ROOT_INO } from './layout.js';
import type { InodeSpec, TreeEntry } from './tree.js';
import { placeXattrs, type XattrPlacement } from './xattr.js';

/** ext4's limit on the names of one non-directory inode (EXT4_LINK_MAX). */
const MAX_LINKS = 65000;
/** ext4 keeps a slow symlink's target in one block, NUL-free, as PATH_MAX allows. */
const MAX_SYMLINK = 4095;
/** Shorter targets live in i_block itself. */
const FAST_SYMLINK = 60;
/** mke2fs gives lost+found 16 KiB so e2fsck never has to grow it while it reconnects files. */
const LOST_FOUND_BLOCKS = 4;

export interface PlannedInode {
  ino: number;
  spec: InodeSpec;
  links: number;
  /** Directories: parent inode and entries. */
  parent?: number;
  entries?: { name: Buffer; spec: InodeSpec }[];
  subdirs?: number;
  dirBlocks?: number;
  xattrs: XattrPlacement;
  /** Blocks this inode needs at finish: directory, extent-tree, slow-symlink and xattr blocks. */
  metaBlocks: number;
}

export interface Plan {
  /** In inode-number order. */
  inodes: PlannedInode[];
  bySpec: Map<InodeSpec, PlannedInode>;
  metaBlocks: number;
  lastIno: number;
}

/** A reason the tree cannot become an ext4 image (a limit of the format), naming the path it concerns. */
export class ImageContentError extends Error {}

/** Numbers every inode (root 2, lost+found 11, the rest from 12 in tree order) and counts what each needs. */
export function planInodes(root: TreeEntry, now: number): Plan {
  const bySpec = new Map<InodeSpec, PlannedInode>();
  const inodes: PlannedInode[] = [];
  let nextIno = FIRST_INO + 1;
  let metaBlocks = 0;

  const add = (spec: InodeSpec, ino: number, path: string): PlannedInode => {
    const xattrs = placeXattrs(spec.xattrs);
    if (typeof xattrs === 'string') throw new ImageContentError(`${path}: ${xattrs}`);
    const p: PlannedInode = { ino, spec, links: 0, xattrs, metaBlocks: xattrs.kind === 'block' ? 1 : 0 };
    if (spec.kind === 'file') p.metaBlocks += extentTreeBlocks(spec.data?.extents.length ?? 0);
    if (spec.kind === 'symlink') {
      const len = Buffer.byteLength(spec.symlinkTarget ?? '');
      if (len === 0 || len > MAX_SYMLINK)
        throw new ImageContentError(`${path}: a symlink target must be 1..${MAX_SYMLINK} bytes, not ${len}`);
      if (len >= FAST_SYMLINK) p.metaBlocks += 1;
    }
    bySpec.set(spec, p);
    inodes.push(p);
    return p;
  };

  const visit = (entry: TreeEntry, self: PlannedInode, parentIno: number, path: string) => {
    self.parent = parentIno;
    self.entries = [];
    self.subdirs = 0;
    const pending: [TreeEntry, PlannedInode, string][] = [];
    for (const child of entry.children ?? []) {
      const childPath = `${path === '/' ? '' : path}/${child.name}`;
      let p = bySpec.get(child.inode);
      if (!p) {
        const special = path === '/' && child.name === 'lost+found';
        if (special && child.inode.kind !== 'dir')
          throw new ImageContentError(
            '/lost+found must be a directory (e2fsck and the kernel reconnect files there)',
          );
        p = add(child.inode, special ? LOST_FOUND_INO : nextIno++, childPath);
        if (child.inode.kind === 'dir') pending.push([child, p, childPath]);
      } else if (child.inode.kind === 'dir') {
        throw new ImageContentError(`${childPath}: a directory cannot have two names`);
      }
      if (++p.links > MAX_LINKS)
        throw new ImageContentError(`${childPath}: more than ${MAX_LINKS} hard links`);
      if (child.inode.kind === 'dir') self.subdirs++;
      self.entries.push({ name: Buffer.from(child.name), spec: child.inode });
    }
    if (path === '/' && !self.entries.some((e) => e.name.toString() === 'lost+found')) {
      const spec: InodeSpec = { kind: 'dir', mode: 0o700, uid: 0, gid: 0, mtime: now, xattrs: new Map() };
      const p = add(spec, LOST_FOUND_INO, '/lost+found');
      p.links = 1;
      self.subdirs++;
      self.entries.push({ name: Buffer.from('lost+found'), spec });
      pending.push([{ name: 'lost+found', inode: spec, children: [] }, p, '/lost+found']);
    }
    self.dirBlocks = Math.max(
      dirBlockCount(self.entries),
      self.ino === LOST_FOUND_INO ? LOST_FOUND_BLOCKS : 1,
    );
    self.metaBlocks += self.dirBlocks;
    for (const [child, p, childPath] of pending) visit(child, p, self.ino, childPath);
  };

  if (root.inode.kind !== 'dir') throw new ImageContentError('the root must be a directory');
  const rootPlan = add(root.inode, ROOT_INO, '/');
  rootPlan.links = 1;
  visit(root, rootPlan, ROOT_INO, '/');
  inodes.sort((a, b) => a.ino - b.ino);
  for (const p of inodes) metaBlocks += p.metaBlocks;
  return { inodes, bySpec, metaBlocks, lastIno: Math.max(nextIno - 1, LOST_FOUND_INO) };
}
