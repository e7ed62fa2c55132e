import type { Readable } from 'node:stream';
import type { Ext4Writer, TreeEntry } from '../ext4/index.js';
import { badRequest } from '../model/errors.js';
import { checkStagedPath } from './paths.js';
import type { EntryMeta } from './types.js';

/** Linux's own limit on symlinks followed while resolving one path (ELOOP). */
const MAX_SYMLINK_HOPS = 40;

export interface TreeNode {
  name: string;
  parent: TreeNode | null;
  parts: string[];
  /** The inode: hardlinked names share one object. */
  meta: EntryMeta;
  /** Index of the layer that last wrote this entry (opaque dirs hide only lower layers). */
  layer: number;
  children?: Map<string, TreeNode>;
  symlinkTarget?: string;
  /** Set on the second and later names of a hardlinked inode. */
  hardlink?: boolean;
  /** Bytes of a regular file's content. */
  size?: number;
}

export interface TreeNotes {
  adjusted: { path: string; what: string }[];
  implicitDirs: number;
}

/**
 * The flattened image: an in-memory tree of the final image's names and inodes. File data is not here:
 * it streams straight into its blocks in the ext4 image being written, and a file that a later layer
 * deletes or replaces gives its blocks back once its last name is gone. All path resolution happens here,
 * inside the image's own root, so a layer's symlink (`etc -> /etc`) is followed as the guest would follow
 * it and never on the host.
 */
export class FlatTree {
  readonly root: TreeNode;
  readonly notes: TreeNotes = { adjusted: [], implicitDirs: 0 };
  private readonly writer: Ext4Writer;
  /** Names per inode with data, so its blocks are freed only when the last one goes. */
  private readonly names = new Map<EntryMeta, number>();

  constructor(writer: Ext4Writer) {
    this.writer = writer;
    this.root = {
      name: '',
      parent: null,
      parts: [],
      meta: dirMeta(Math.floor(Date.now() / 1000)),
      layer: -1,
      children: new Map(),
    };
  }

  /** Resolves the directory that holds `parts`' last component, following symlinks inside the image. */
  parentOf(parts: readonly string[], layer: number, mtime: number): TreeNode {
    return this.resolveParent(parts, { layer, mtime })!;
  }

  /** Like parentOf, but makes no missing directories: undefined when the parent does not exist. */
  existingParentOf(parts: readonly string[]): TreeNode | undefined {
    return this.resolveParent(parts, undefined);
  }

  private resolveParent(
    parts: readonly string[],
    create: { layer: number; mtime: number } | undefined,
  ): TreeNode | undefined {
    let dir: TreeNode | undefined = this.root;
    const budget = { hops: 0 };
    for (const part of parts.slice(0, -1)) {
      dir = this.step(dir, part, create, budget, parts);
      if (!dir) return undefined;
    }
    return dir;
  }

  private step(
    dir: TreeNode,
    part: string,
    create: { layer: number; mtime: number } | undefined,
    budget: { hops: number },
    whole: readonly string[],
  ): TreeNode | undefined {
    if (part === '..') return dir.parent ?? dir;
    const child = dir.children!.get(part);
    if (!child) {
      if (!create) return undefined;
      // Tar lets an entry arrive before (or without) its parent directory; make it as GNU tar does.
      const made = this.attach(dir, part, dirMeta(create.mtime), create.layer);
      this.notes.implicitDirs++;
      return made;
    }
    if (child.children) return child;
    if (child.symlinkTarget !== undefined) {
      if (++budget.hops > MAX_SYMLINK_HOPS)
        throw badRequest(`layer entry /${whole.join('/')} goes through too many symlinks (a loop?)`);
      const target = child.symlinkTarget;
      let at: TreeNode | undefined = target.startsWith('/') ? this.root : dir;
      for (const p of target.split('/').filter((s) => s !== '' && s !== '.')) {
        at = this.step(at, p, create, budget, whole);
        if (!at) return undefined;
      }
      return at;
    }
    throw badRequest(`layer entry /${whole.join('/')}: /${child.parts.join('/')} is not a directory`, {
      hint: 'the layer writes below a file; the image is malformed',
    });
  }

  private attach(dir: TreeNode, name: string, meta: EntryMeta, layer: number): TreeNode {
    // Every node's path is checked here, where it is known after symlinks.
    const parts = [...dir.parts, name];
    checkStagedPath(parts);
    const node: TreeNode = { name, parent: dir, parts, meta, layer };
    if (meta.kind === 'dir') node.children = new Map();
    if (meta.data) this.names.set(meta, (this.names.get(meta) ?? 0) + 1);
    dir.children!.set(name, node);
    return node;
  }

  /** Takes a name (and everything below it) out of the image; file blocks nobody names any more are freed. */
  remove(node: TreeNode): void {
    if (!node.parent) return;
    node.parent.children!.delete(node.name);
    this.forget(node);
  }

  private forget(node: TreeNode): void {
    if (node.children) for (const child of node.children.values()) this.forget(child);
    const { data } = node.meta;
    if (!data) return;
    const left = (this.names.get(node.meta) ?? 1) - 1;
    if (left > 0) {
      this.names.set(node.meta, left);
      return;
    }
    this.names.delete(node.meta);
    this.writer.release(data);
  }

  /** Makes room for a new entry named `name` in `dir`: a directory over a directory keeps its children. */
  private replace(dir: TreeNode, name: string, incoming: EntryMeta['kind']): TreeNode | undefined {
    const existing = dir.children!.get(name);
    if (!existing) return undefined;
    if (incoming === 'dir' && existing.children) return existing;
    this.remove(existing);
    return undefined;
  }

  putDir(dir: TreeNode, name: string, meta: EntryMeta, layer: number): TreeNode {
    const kept = this.replace(dir, name, 'dir');
    if (kept) {
      kept.meta = meta;
      kept.layer = layer;
      return kept;
    }
    return this.attach(dir, name, meta, layer);
  }

  /** Streams a regular file's `size` bytes into the image; returns the size. */
  async putFile(
    dir: TreeNode,
    name: string,
    meta: EntryMeta,
    layer: number,
    size: number,
    data: Readable,
  ): Promise<number> {
    // The old file goes first so a same-sized replacement can reuse its blocks.
    this.replace(dir, name, 'file');
    checkStagedPath([...dir.parts, name]);
    meta.data = await this.writer.writeFile(size, data as AsyncIterable<Buffer>);
    const node = this.attach(dir, name, meta, layer);
    node.size = size;
    return size;
  }

  async putBytes(dir: TreeNode, name: string, meta: EntryMeta, layer: number, data: Buffer): Promise<void> {
    this.replace(dir, name, 'file');
    checkStagedPath([...dir.parts, name]);
    meta.data = await this.writer.writeBytes(data);
    const node = this.attach(dir, name, meta, layer);
    node.size = data.length;
  }

  putSymlink(dir: TreeNode, name: string, meta: EntryMeta, layer: number, target: string): void {
    this.replace(dir, name, 'symlink');
    meta.symlinkTarget = target;
    const node = this.attach(dir, name, meta, layer);
    node.symlinkTarget = target;
  }

  /** Devices and FIFOs: an inode with no data. */
  putSpecial(dir: TreeNode, name: string, meta: EntryMeta, layer: number): void {
    this.replace(dir, name, meta.kind);
    this.attach(dir, name, meta, layer);
  }

  /** Another name for `target`'s inode (any kind but a directory). */
  putHardlink(dir: TreeNode, name: string, target: TreeNode, layer: number): void {
    if (target.parent === dir && target.name === name) return;
    this.replace(dir, name, target.meta.kind);
    const node = this.attach(dir, name, target.meta, layer);
    node.hardlink = true;
    node.size = target.size;
    if (target.symlinkTarget !== undefined) node.symlinkTarget = target.symlinkTarget;
  }

  /** Every node, parents before children. */
  *walk(from: TreeNode = this.root): Generator<TreeNode> {
    yield from;
    if (from.children) for (const child of from.children.values()) yield* this.walk(child);
  }

  /** The tree as the ext4 writer takes it (a view: nothing is copied). */
  entry(from: TreeNode = this.root): TreeEntry {
    const children = from.children;
    return {
      name: from.name,
      inode: from.meta,
      ...(children ? { children: mapChildren(this, children) } : {}),
    };
  }
}

function* mapChildren(tree: FlatTree, children: Map<string, TreeNode>): Generator<TreeEntry> {
  for (const child of children.values()) yield tree.entry(child);
}

export function dirMeta(mtime: number): EntryMeta {
  return { kind: 'dir', uid: 0, gid: 0, mode: 0o755, mtime, xattrs: new Map() };
}
