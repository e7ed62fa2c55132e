import type { Readable } from 'node:stream';
import { badRequest } from '../model/errors.js';
import { checkStagedPath } from './paths.js';
import { finishDir, type Staging } from './staging.js';
import type { EntryMeta } from './types.js';

/** Linux's own limit on symlinks followed while resolving one path (ELOOP). */
const MAX_SYMLINK_HOPS = 40;

export interface TreeNode {
  name: string;
  parent: TreeNode | null;
  parts: string[];
  meta: EntryMeta;
  /** Index of the layer that last wrote this entry (opaque dirs hide only lower layers). */
  layer: number;
  children?: Map<string, TreeNode>;
  symlinkTarget?: string;
  /** Set on the second and later names of a hardlinked inode; they share `meta` (the inode) with it. */
  hardlink?: boolean;
  /** Bytes of a regular file's content. */
  size?: number;
  /** Exists only in the tree: devices and FIFOs are made by debugfs, not on the host. */
  virtual?: boolean;
}

/** What the staged host inode looks like, which is what `mkfs.ext4 -d` copies. */
export interface StagedState {
  mode: number;
  uid: number;
  gid: number;
}

export interface TreeNotes {
  adjusted: { path: string; what: string }[];
  implicitDirs: number;
}

/**
 * The flattened image: an in-memory tree (the metadata map) mirrored by the staging directory for
 * everything mkfs can copy. All path resolution happens here, inside the image's own root, so a layer's
 * symlink (`etc -> /etc`) is followed as the guest would follow it and never on the host.
 */
export class FlatTree {
  readonly root: TreeNode;
  readonly notes: TreeNotes = { adjusted: [], implicitDirs: 0 };

  readonly staging: Staging;
  /** Whether staging can take real owners (running as root) or keeps the builder's own. */
  readonly canChown: boolean;
  readonly self: { uid: number; gid: number };

  constructor(staging: Staging, canChown: boolean, self: { uid: number; gid: number }) {
    this.staging = staging;
    this.canChown = canChown;
    this.self = self;
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
  async parentOf(parts: readonly string[], layer: number, mtime: number): Promise<TreeNode> {
    return (await this.resolveParent(parts, { layer, mtime }))!;
  }

  /** Like parentOf, but makes no missing directories: undefined when the parent does not exist. */
  async existingParentOf(parts: readonly string[]): Promise<TreeNode | undefined> {
    return this.resolveParent(parts, undefined);
  }

  private async resolveParent(
    parts: readonly string[],
    create: { layer: number; mtime: number } | undefined,
  ): Promise<TreeNode | undefined> {
    let dir: TreeNode | undefined = this.root;
    const budget = { hops: 0 };
    for (const part of parts.slice(0, -1)) {
      dir = await this.step(dir, part, create, budget, parts);
      if (!dir) return undefined;
    }
    return dir;
  }

  private async step(
    dir: TreeNode,
    part: string,
    create: { layer: number; mtime: number } | undefined,
    budget: { hops: number },
    whole: readonly string[],
  ): Promise<TreeNode | undefined> {
    if (part === '..') return dir.parent ?? dir;
    const child = dir.children!.get(part);
    if (!child) {
      if (!create) return undefined;
      // Tar lets an entry arrive before (or without) its parent directory; make it as GNU tar does.
      const made = this.attach(dir, part, dirMeta(create.mtime), create.layer);
      await this.staging.mkdir(made.parts);
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
        at = await this.step(at, p, create, budget, whole);
        if (!at) return undefined;
      }
      return at;
    }
    throw badRequest(`layer entry /${whole.join('/')}: /${child.parts.join('/')} is not a directory`, {
      hint: 'the layer writes below a file; the image is malformed',
    });
  }

  private attach(dir: TreeNode, name: string, meta: EntryMeta, layer: number): TreeNode {
    // Every node's path is checked here, where it is known after symlinks, before the host sees it.
    const parts = [...dir.parts, name];
    checkStagedPath(parts);
    const node: TreeNode = { name, parent: dir, parts, meta, layer };
    if (meta.kind === 'dir') node.children = new Map();
    dir.children!.set(name, node);
    return node;
  }

  async remove(node: TreeNode): Promise<void> {
    if (!node.parent) return;
    node.parent.children!.delete(node.name);
    if (!node.virtual) await this.staging.remove(node.parts);
  }

  /** Makes room for a new entry named `name` in `dir`: a directory over a directory keeps its children. */
  private async replace(
    dir: TreeNode,
    name: string,
    incoming: EntryMeta['kind'],
  ): Promise<TreeNode | undefined> {
    const existing = dir.children!.get(name);
    if (!existing) return undefined;
    if (incoming === 'dir' && existing.children) return existing;
    await this.remove(existing);
    return undefined;
  }

  async putDir(dir: TreeNode, name: string, meta: EntryMeta, layer: number): Promise<TreeNode> {
    const kept = await this.replace(dir, name, 'dir');
    if (kept) {
      kept.meta = meta;
      kept.layer = layer;
      return kept;
    }
    const node = this.attach(dir, name, meta, layer);
    await this.staging.mkdir(node.parts);
    return node;
  }

  async putFile(
    dir: TreeNode,
    name: string,
    meta: EntryMeta,
    layer: number,
    data: Readable,
  ): Promise<number> {
    await this.replace(dir, name, 'file');
    const node = this.attach(dir, name, meta, layer);
    node.size = await this.staging.writeFile(node.parts, data, this.staged(meta).mode, meta.mtime);
    return node.size;
  }

  async putBytes(dir: TreeNode, name: string, meta: EntryMeta, layer: number, data: Buffer): Promise<void> {
    await this.replace(dir, name, 'file');
    const node = this.attach(dir, name, meta, layer);
    node.size = data.length;
    await this.staging.writeBytes(node.parts, data, this.staged(meta).mode, meta.mtime);
  }

  async putSymlink(
    dir: TreeNode,
    name: string,
    meta: EntryMeta,
    layer: number,
    target: string,
  ): Promise<void> {
    await this.replace(dir, name, 'symlink');
    const node = this.attach(dir, name, meta, layer);
    node.symlinkTarget = target;
    await this.staging.symlink(node.parts, target, meta.mtime);
  }

  /** Devices and FIFOs: recorded here, created in the image by debugfs (no privilege needed). */
  async putVirtual(dir: TreeNode, name: string, meta: EntryMeta, layer: number): Promise<void> {
    await this.replace(dir, name, meta.kind);
    const node = this.attach(dir, name, meta, layer);
    node.virtual = true;
  }

  async putHardlink(dir: TreeNode, name: string, target: TreeNode, layer: number): Promise<void> {
    if (target.parent === dir && target.name === name) return;
    await this.replace(dir, name, target.meta.kind);
    if (target.virtual) {
      // ext4 could share the inode, but debugfs cannot link a name to an existing inode safely in
      // one batch; a second node with the same numbers behaves the same for every reader.
      const node = this.attach(dir, name, { ...target.meta, xattrs: new Map(target.meta.xattrs) }, layer);
      node.virtual = true;
      this.notes.adjusted.push({
        path: `/${node.parts.join('/')}`,
        what: `hardlink to device/FIFO /${target.parts.join('/')} made as a separate node`,
      });
      return;
    }
    const node = this.attach(dir, name, target.meta, layer);
    node.hardlink = true;
    node.size = target.size;
    if (target.symlinkTarget !== undefined) node.symlinkTarget = target.symlinkTarget;
    await this.staging.link(target.parts, node.parts);
  }

  /** What staging holds for an inode with this metadata. */
  staged(meta: EntryMeta): StagedState {
    // The builder must be able to read every file and enter every directory it staged (mkfs reads them
    // as the same user), and an unprivileged chmod may drop setgid; the exact mode is set by debugfs.
    const need = meta.kind === 'dir' ? 0o700 : 0o400;
    const owner = this.canChown ? { uid: meta.uid, gid: meta.gid } : this.self;
    return { mode: (meta.mode & 0o777) | need, ...owner };
  }

  /** Every node, parents before children. */
  *walk(from: TreeNode = this.root): Generator<TreeNode> {
    yield from;
    if (from.children) for (const child of from.children.values()) yield* this.walk(child);
  }

  /** Final owners, modes and times on the host tree, children before parents (their writes moved mtime). */
  async finish(): Promise<void> {
    const post: TreeNode[] = [...this.walk()].reverse();
    const owned = new Set<EntryMeta>();
    for (const node of post) {
      if (node.virtual) continue;
      if (this.canChown && !owned.has(node.meta)) {
        owned.add(node.meta);
        await this.staging.chown(node.parts, node.meta.uid, node.meta.gid);
      }
      if (node.children)
        await finishDir(this.staging, node.parts, this.staged(node.meta).mode, node.meta.mtime);
    }
  }
}

export function dirMeta(mtime: number): EntryMeta {
  return { kind: 'dir', uid: 0, gid: 0, mode: 0o755, mtime, xattrs: new Map() };
}
