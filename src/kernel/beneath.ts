import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { badRequest } from '../model/errors.js';

/** As the kernel's MAXSYMLINKS: more links than this on one path is a loop. */
const MAX_LINK_HOPS = 40;

/**
 * Refuses a tree that a bundle or package made when any symlink in it, resolved the way the kernel will
 * (through every other link, by the files actually on disk), leads outside `root` or loops. A lexical
 * check cannot see this: with `d/d -> ..`, `d/d/d/d/../../x` normalizes to `d/d/x` but climbs two levels
 * above `root`. Once every link resolves beneath `root`, reading any path beneath it stays beneath it.
 * Call it after the tree is complete and before anything reads through it.
 */
export async function refuseEscapingSymlinks(root: string, what: string): Promise<void> {
  for (const link of await symlinksUnder(root)) {
    const rel = relative(root, link);
    const leak = await escapeOf(root, rel);
    if (leak) {
      throw badRequest(`${what} symlink ${rel} -> ${await readlink(link)} ${leak}`, {
        hint: 'the bundle or package is malformed or hostile; nothing was installed',
      });
    }
  }
}

async function symlinksUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) found.push(path);
    else if (entry.isDirectory()) found.push(...(await symlinksUnder(path)));
  }
  return found;
}

/** Walks `rel` beneath `root` following every link; why it leaves `root`, or undefined when it stays. */
async function escapeOf(root: string, rel: string): Promise<string | undefined> {
  const at: string[] = [];
  let todo = rel.split('/');
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (at.length === 0) return 'leads outside the tree';
      at.pop();
      continue;
    }
    const path = join(root, ...at, part);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isSymbolicLink()) {
      at.push(part); // a directory, a file, or nothing yet: the rest is plain names
      continue;
    }
    if (++hops > MAX_LINK_HOPS) return 'is a symlink loop';
    const target = await readlink(path);
    if (posix.isAbsolute(target)) return 'points to an absolute path';
    todo = [...target.split('/'), ...todo];
  }
  return undefined;
}
