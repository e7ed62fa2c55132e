import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What goes into a workspace archive: paths relative to its root, in an order tar can extract (a directory
 * before what it holds), with the bytes they carry and what was left out and why.
 */
export interface TreeList {
  /** Relative paths; directories are listed (tar is run without recursion). */
  entries: string[];
  /** Sum of the regular files' sizes: what the guest's disk must hold. */
  bytes: number;
  /** One line per entry left out (a socket, a FIFO, a device), for the user. */
  skipped: string[];
}

export function emptyList(): TreeList {
  return { entries: [], bytes: 0, skipped: [] };
}

/** Appends b to a (both lists keep their own order). */
export function joinLists(a: TreeList, b: TreeList): TreeList {
  return {
    entries: [...a.entries, ...b.entries],
    bytes: a.bytes + b.bytes,
    skipped: [...a.skipped, ...b.skipped],
  };
}

/** Why an entry of this kind is left out; undefined for the kinds that are copied. */
export function specialKind(d: {
  isFIFO(): boolean;
  isSocket(): boolean;
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
}): string | undefined {
  if (d.isFIFO()) return 'a FIFO';
  if (d.isSocket()) return 'a socket';
  if (d.isBlockDevice() || d.isCharacterDevice()) return 'a device';
  return undefined;
}

/**
 * Every entry under `root/rel` (rel itself included when given), never following a symlink: a link is
 * listed as a link, whatever it points at, and a directory reached through one is never entered (readdir's
 * entry types come from the directory itself, as lstat's do). Special files are skipped with a notice.
 */
export async function walkTree(root: string, rel = ''): Promise<TreeList> {
  const out = emptyList();
  if (rel) {
    const st = await lstat(join(root, rel));
    if (!st.isDirectory()) throw new Error(`${rel} is not a directory`);
    out.entries.push(rel);
  }
  const visit = async (dir: string): Promise<void> => {
    let children: Dirent[];
    try {
      children = await readdir(join(root, dir), { withFileTypes: true });
    } catch (err) {
      throw new Error(`cannot read ${dir || '.'}: ${(err as Error).message}`);
    }
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const child of children) {
      const path = dir ? `${dir}/${child.name}` : child.name;
      const special = specialKind(child);
      if (special) {
        out.skipped.push(`${path} (${special})`);
      } else if (child.isDirectory()) {
        out.entries.push(path);
        await visit(path);
      } else if (child.isSymbolicLink()) {
        out.entries.push(path);
      } else {
        out.entries.push(path);
        out.bytes += (await lstat(join(root, path))).size;
      }
    }
  };
  await visit(rel);
  return out;
}
