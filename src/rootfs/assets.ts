import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner, type Runner, runConfined } from '../host/index.js';
import { badRequest } from '../model/errors.js';
import type { GuestAsset } from '../model/guest-asset.js';
import { checkDebugfsErrors, DEBUGFS_TIMEOUT_MS, probePaths } from './ext4.js';
import { absolute, debugfsQuote, entryComponents } from './paths.js';
import type { FlatTree } from './tree.js';
import type { EntryKind, EntryMeta } from './types.js';

/** File-type bits debugfs needs with every mode it sets: without them the inode turns into garbage. */
const TYPE_BITS: Record<EntryKind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

function assetParts(asset: GuestAsset): string[] {
  if (!asset.path.startsWith('/')) throw badRequest(`guest asset path ${asset.path} must be absolute`);
  const parts = entryComponents(asset.path.slice(1));
  if (parts.length === 0) throw badRequest('a guest asset cannot replace the root directory');
  return parts;
}

async function contentOf(asset: Extract<GuestAsset, { kind: 'file' }>): Promise<Buffer> {
  const { content } = asset;
  if (typeof content === 'string') return Buffer.from(content);
  if (Buffer.isBuffer(content)) return content;
  return readFile(content.hostPath);
}

function assetMeta(asset: GuestAsset, mtime: number): EntryMeta {
  const kind = asset.kind === 'file' ? 'file' : asset.kind === 'dir' ? 'dir' : 'symlink';
  const mode = asset.kind === 'symlink' ? 0o777 : asset.mode & 0o7777;
  return { kind, uid: asset.uid ?? 0, gid: asset.gid ?? 0, mode, mtime, xattrs: new Map() };
}

/** Puts guest assets into the flattened tree (and their bytes into the image), through the same in-image path resolution. */
export async function addAssetsToTree(
  tree: FlatTree,
  assets: readonly GuestAsset[],
  layer: number,
): Promise<void> {
  const mtime = Math.floor(Date.now() / 1000);
  for (const asset of assets) {
    const parts = assetParts(asset);
    const dir = tree.parentOf(parts, layer, mtime);
    const name = parts[parts.length - 1]!;
    const meta = assetMeta(asset, mtime);
    if (asset.kind === 'dir') {
      // A distro may make this directory a symlink (/etc/init.d -> rc.d/init.d): keep it and its target.
      if (dir.children?.get(name)?.symlinkTarget !== undefined) tree.parentOf([...parts, '.'], layer, mtime);
      else tree.putDir(dir, name, meta, layer);
    } else if (asset.kind === 'file') await tree.putBytes(dir, name, meta, layer, await contentOf(asset));
    else tree.putSymlink(dir, name, meta, layer, asset.target);
  }
}

/** The parents of `parts`, shallowest first. */
function parentsOf(parts: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(absolute(parts.slice(0, i)));
  return out;
}

/**
 * Writes guest assets into an existing ext4 image (built elsewhere: a bundle, a promoted registered image)
 * without mounting: banger's own reader sees what exists, then one debugfs write batch, run confined
 * (uid 65534, the image as fd 3, the script on stdin) because the image's maker controls every byte
 * debugfs parses. Missing parents are made root-owned 0755; an existing file or symlink is replaced; an
 * existing directory in a file's place is an error.
 */
export async function injectAssets(
  ext4Path: string,
  assets: readonly GuestAsset[],
  runner: Runner = createRunner(),
): Promise<void> {
  if (assets.length === 0) return;
  const work = await mkdtemp(join(tmpdir(), 'banger-inject-'));
  // The confined debugfs reads the asset files by name: it may pass through, not list or write.
  await chmod(work, 0o711);
  try {
    const planned = assets.map((asset) => ({ asset, parts: assetParts(asset) }));
    const probe = [...new Set(planned.flatMap(({ parts }) => [...parentsOf(parts), absolute(parts)]))];
    const exists: Map<string, string> = await probePaths(ext4Path, probe);
    const lines: string[] = [];
    const mtime = Math.floor(Date.now() / 1000);
    const made = new Set<string>();
    const ensureDir = (path: string) => {
      if (exists.has(path) || made.has(path)) return;
      made.add(path);
      lines.push(`mkdir ${debugfsQuote(path)}`, `sif ${debugfsQuote(path)} mode 040755`);
    };
    for (const [i, { asset, parts }] of planned.entries()) {
      for (const parent of parentsOf(parts)) ensureDir(parent);
      const path = absolute(parts);
      const q = debugfsQuote(path);
      const meta = assetMeta(asset, mtime);
      const existing = exists.get(path) ?? (made.has(path) ? 'directory' : undefined);
      if (asset.kind === 'dir') {
        // An existing symlink or file keeps its inode: a mode with directory bits on it would corrupt it.
        if (existing !== undefined && existing !== 'directory') {
          if (existing === 'symlink') continue;
          throw badRequest(`cannot make guest directory ${path}: a ${existing} file is in the way`);
        }
        ensureDir(path);
      } else {
        if (existing === 'directory')
          throw badRequest(`cannot write guest asset ${path}: a directory is in the way`);
        if (existing !== undefined) lines.push(`rm ${q}`);
        if (asset.kind === 'file') {
          const host = join(work, `asset-${i}`);
          await writeFile(host, await contentOf(asset), { mode: 0o644 });
          // The trailing `/.` makes debugfs follow a symlinked parent (/etc/init.d -> rc.d/init.d); cd alone
          // does not follow its last component.
          lines.push(`cd ${debugfsQuote(`${absolute(parts.slice(0, -1))}/.`)}`);
          // write links the new inode into the current directory under the bare name.
          lines.push(`write ${debugfsQuote(host)} ${debugfsQuote(parts[parts.length - 1]!)}`, 'cd /');
        } else {
          // Same as write: debugfs's symlink does not follow a symlinked parent (/sbin -> usr/sbin).
          lines.push(`cd ${debugfsQuote(`${absolute(parts.slice(0, -1))}/.`)}`);
          lines.push(
            `symlink ${debugfsQuote(parts[parts.length - 1]!)} ${debugfsQuote(asset.target)}`,
            'cd /',
          );
        }
        exists.set(path, asset.kind === 'file' ? 'regular' : 'symlink');
      }
      lines.push(`sif ${q} mode 0${(TYPE_BITS[meta.kind] | meta.mode).toString(8)}`);
      lines.push(`sif ${q} uid ${meta.uid}`, `sif ${q} gid ${meta.gid}`, `sif ${q} mtime @${mtime}`);
    }
    const r = await runConfined(runner, ext4Path, (image) => ['debugfs', '-w', '-f', '-', image], {
      input: `${lines.join('\n')}\n`,
      timeoutMs: DEBUGFS_TIMEOUT_MS,
    });
    checkDebugfsErrors(ext4Path, r.stderr);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
