import { open, writeFile } from 'node:fs/promises';
import type { Runner } from '../host/index.js';
import { badRequest, operationFailed } from '../model/errors.js';
import { formatSize } from '../model/sizes.js';
import { debugfsQuote } from './paths.js';

/** The image gets room to grow: content × 1.5, never below 1 GiB (as the original). */
const HEADROOM = 1.5;
const MIN_IMAGE_BYTES = 1024 ** 3;
const BLOCK = 4096;
/** mke2fs's default bytes-per-inode for a filesystem of this size. */
const BYTES_PER_INODE = 16384;

/** What the image must hold: file blocks, one block per directory/symlink, inode table. */
export interface ContentEstimate {
  bytes: number;
  inodes: number;
}

export function estimateBytes(fileSizes: Iterable<number>, otherInodes: number): ContentEstimate {
  let bytes = 0;
  let inodes = otherInodes;
  for (const size of fileSizes) {
    bytes += Math.ceil(size / BLOCK) * BLOCK;
    inodes++;
  }
  bytes += otherInodes * BLOCK + inodes * 256;
  return { bytes, inodes };
}

/** The image size: the requested one if the content fits, else content × 1.5 (at least 1 GiB). */
export function chooseSize(estimate: ContentEstimate, requested: number | undefined): number {
  // ext4's own metadata (journal, group descriptors, bitmaps) takes a few percent plus the journal.
  const needed = Math.ceil(estimate.bytes * 1.1) + 8 * 1024 * 1024;
  if (requested !== undefined) {
    if (requested < needed) {
      throw badRequest(
        `the image content needs about ${formatSize(needed)} but the requested size is ${formatSize(requested)}`,
        { hint: `use a size of at least ${formatSize(needed)}` },
      );
    }
    return requested;
  }
  const size = Math.max(MIN_IMAGE_BYTES, Math.ceil(estimate.bytes * HEADROOM));
  return Math.ceil(size / (1024 * 1024)) * 1024 * 1024;
}

/** `mkfs.ext4 -d` on a pre-sized sparse file; no mount, no loop device, no privilege. */
export async function makeExt4(opts: {
  runner: Runner;
  stagingDir: string;
  output: string;
  sizeBytes: number;
  inodes: number;
  signal?: AbortSignal;
}): Promise<void> {
  const fh = await open(opts.output, 'wx', 0o644);
  try {
    await fh.truncate(opts.sizeBytes);
  } finally {
    await fh.close();
  }
  const argv = ['mkfs.ext4', '-F', '-q', '-b', String(BLOCK), '-L', 'banger-rootfs', '-E', 'root_owner=0:0'];
  // Many small files exhaust mke2fs's default inode count long before the blocks run out.
  const defaultInodes = Math.floor(opts.sizeBytes / BYTES_PER_INODE);
  const wanted = Math.ceil(opts.inodes * 1.25) + 1024;
  if (wanted > defaultInodes) argv.push('-N', String(wanted));
  argv.push('-d', opts.stagingDir, opts.output);
  await opts.runner.run(argv, { signal: opts.signal, timeoutMs: 30 * 60_000 });
}

/** Lines of debugfs stderr that are not errors: its banner. */
const BANNER = /^debugfs \d+\.\d+/;

/**
 * Runs a debugfs command file against an image in write mode. debugfs exits 0 even when a command fails,
 * so anything on stderr but its banner is a failure.
 */
export async function runDebugfs(opts: {
  runner: Runner;
  image: string;
  scriptPath: string;
  signal?: AbortSignal;
}): Promise<void> {
  const result = await opts.runner.run(['debugfs', '-w', '-f', opts.scriptPath, opts.image], {
    signal: opts.signal,
    timeoutMs: 30 * 60_000,
  });
  const errors = result.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !BANNER.test(l));
  if (errors.length > 0) {
    throw operationFailed(`debugfs failed on ${opts.image}: ${errors.slice(0, 5).join('; ')}`);
  }
}

/** Reads an image's listing of `paths` with one read-only debugfs run: which exist, and their type. */
export async function probePaths(
  runner: Runner,
  image: string,
  scriptPath: string,
  paths: readonly string[],
): Promise<Map<string, string>> {
  await writeFile(scriptPath, paths.map((p) => `stat ${debugfsQuote(p)}\n`).join(''));
  const result = await runner.run(['debugfs', '-f', scriptPath, image]);
  const found = new Map<string, string>();
  // stdout echoes each command as `debugfs: stat "<path>"`; the stat body follows only when it exists.
  let current: string | undefined;
  for (const line of splitEchoes(result.stdout)) {
    if (line.startsWith('debugfs: stat ')) {
      const idx = echoIndex(line, paths);
      current = idx === undefined ? undefined : paths[idx];
      continue;
    }
    const m = /^Inode: \d+\s+Type: (\S+)/.exec(line);
    if (m && current !== undefined) {
      found.set(current, m[1]!);
      current = undefined;
    }
  }
  return found;
}

function echoIndex(line: string, paths: readonly string[]): number | undefined {
  const arg = line.slice('debugfs: stat '.length);
  for (const [i, p] of paths.entries()) if (debugfsQuote(p) === arg) return i;
  return undefined;
}

/** debugfs ends some outputs (a device's numbers) without a newline, so an echo can follow mid-line. */
export function splitEchoes(stdout: string): string[] {
  return stdout.replaceAll('debugfs: ', '\ndebugfs: ').split('\n');
}
