import type { Readable } from 'node:stream';
import type tarStream from 'tar-stream';
import { badRequest } from '../model/errors.js';
import type { FlattenOptions, FlattenStats } from './flatten.js';
import { type HeaderNumbers, headerNumbers } from './header-numbers.js';
import { entryComponents } from './paths.js';
import { xattrsOf } from './pax-xattrs.js';
import type { FlatTree, TreeNode } from './tree.js';
import type { EntryMeta } from './types.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
export const LIMIT_HINT = 'raise max_unpacked_size / max_entries in config.toml if the image is genuine';

function metaOf(header: tarStream.Header, kind: EntryMeta['kind'], n: HeaderNumbers): EntryMeta {
  const pax = (header.pax ?? undefined) as Record<string, string> | undefined;
  const meta: EntryMeta = {
    kind,
    uid: n.uid,
    gid: n.gid,
    mode: (header.mode ?? (kind === 'dir' ? 0o755 : 0o644)) & 0o7777,
    mtime: n.mtime,
    mtimeNsec: n.mtimeNsec,
    xattrs: xattrsOf(pax),
  };
  if (kind === 'char' || kind === 'block') {
    meta.devMajor = n.devMajor;
    meta.devMinor = n.devMinor;
  }
  return meta;
}

/** Applies one tar entry of layer `layer` to the tree: a whiteout, or an entry of any kind. */
export async function applyEntry(
  entry: Readable,
  header: tarStream.Header,
  layer: number,
  options: FlattenOptions,
  stats: FlattenStats,
): Promise<void> {
  const { tree } = options;
  const parts = entryComponents(header.name);
  // Every entry, also one that is skipped: a bad number means the layer cannot be trusted to parse.
  const numbers = headerNumbers(header, `/${parts.join('/')}`);
  const drain = () => entry.resume();
  if (parts.length === 0) {
    // The root itself (`./` or umoci's `/`): its metadata is the image root's.
    if (header.type === 'directory') tree.root.meta = metaOf(header, 'dir', numbers);
    drain();
    return;
  }
  const name = parts[parts.length - 1]!;
  const shown = `/${parts.join('/')}`;

  if (name.startsWith(WHITEOUT)) {
    drain();
    // A whiteout under a directory that does not exist has nothing to hide and must not create it.
    const dir = tree.existingParentOf(parts);
    if (!dir) return;
    if (name === OPAQUE) {
      stats.whiteouts.opaqueDirs++;
      hideLower(tree, dir, layer);
    } else if (name.startsWith(`${WHITEOUT}${WHITEOUT}`)) {
      stats.dropped.push({ path: shown, reason: 'AUFS metadata entry' });
    } else {
      stats.whiteouts.files++;
      const victim = dir.children!.get(name.slice(WHITEOUT.length));
      if (victim) tree.remove(victim);
    }
    return;
  }

  const dir = tree.parentOf(parts, layer, Math.floor(Date.now() / 1000));
  switch (header.type) {
    case 'file':
    case 'contiguous-file': {
      const size = header.size ?? 0;
      if (stats.contentBytes + size > options.limits.maxUnpackedBytes) {
        throw badRequest(
          `the image unpacks to more than ${options.limits.maxUnpackedBytes} bytes (at ${shown})`,
          { hint: LIMIT_HINT },
        );
      }
      stats.contentBytes += await tree.putFile(
        dir,
        name,
        metaOf(header, 'file', numbers),
        layer,
        size,
        entry,
      );
      return;
    }
    case 'directory':
      drain();
      tree.putDir(dir, name, metaOf(header, 'dir', numbers), layer);
      return;
    case 'symlink': {
      drain();
      const target = header.linkname ?? '';
      if (target === '' || /[\n\r\0]/.test(target))
        throw badRequest(`symlink ${shown} has an empty or unprintable target`);
      // Kept verbatim, absolute or not: the guest resolves it inside its own root.
      tree.putSymlink(dir, name, metaOf(header, 'symlink', numbers), layer, target);
      return;
    }
    case 'link': {
      drain();
      const target = resolveHardlink(tree, header.linkname ?? '', shown);
      tree.putHardlink(dir, name, target, layer);
      return;
    }
    case 'character-device':
    case 'block-device':
    case 'fifo': {
      drain();
      const kind = header.type === 'fifo' ? 'fifo' : header.type === 'block-device' ? 'block' : 'char';
      tree.putSpecial(dir, name, metaOf(header, kind, numbers), layer);
      return;
    }
    default:
      drain();
      stats.dropped.push({ path: shown, reason: `tar entry type ${header.type} is not supported` });
  }
}

function resolveHardlink(tree: FlatTree, linkname: string, shown: string): TreeNode {
  let parts: string[];
  try {
    parts = entryComponents(linkname);
  } catch {
    throw badRequest(`hardlink ${shown} -> ${JSON.stringify(linkname)} points outside the image`);
  }
  if (parts.length === 0) throw badRequest(`hardlink ${shown} points at the root directory`);
  const dir = tree.existingParentOf(parts);
  const target = dir?.children?.get(parts[parts.length - 1]!);
  if (!target)
    throw badRequest(`hardlink ${shown} -> ${linkname}: the target is not in this or an earlier layer`);
  if (target.children) throw badRequest(`hardlink ${shown} -> ${linkname}: the target is a directory`);
  return target;
}

/** An opaque directory hides what lower layers put in it; this layer's entries (before or after) stay. */
function hideLower(tree: FlatTree, dir: TreeNode, layer: number): void {
  for (const child of [...dir.children!.values()]) {
    if (child.layer === layer || hasLayer(child, layer)) {
      if (child.children) hideLower(tree, child, layer);
      continue;
    }
    tree.remove(child);
  }
}

function hasLayer(node: TreeNode, layer: number): boolean {
  if (!node.children) return false;
  for (const child of node.children.values())
    if (child.layer === layer || hasLayer(child, layer)) return true;
  return false;
}
