import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** sha256 (hex) and size of a file, streamed. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * A digest of a whole tree: sha256 over one `relative-path\0sha256\n` line per regular file, sorted by path,
 * so two trees with the same files hash the same wherever they live.
 */
export async function hashTree(dir: string): Promise<{ treeSha256: string; count: number; bytes: number }> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) files.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  files.sort();
  const tree = createHash('sha256');
  let bytes = 0;
  for (const rel of files) {
    const { sha256 } = await hashFile(join(dir, rel));
    bytes += (await stat(join(dir, rel))).size;
    tree.update(`${rel}\0${sha256}\n`);
  }
  return { treeSha256: tree.digest('hex'), count: files.length, bytes };
}
