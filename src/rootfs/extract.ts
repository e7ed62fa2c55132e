import { lstat, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Runner } from '../host/index.js';
import { operationFailed } from '../model/errors.js';
import { debugfsQuote } from './paths.js';

/**
 * Copies a directory of an ext4 image to `destDir/<its name>` without mounting (debugfs `rdump`, which
 * keeps owners, modes and symlinks; setuid/setgid bits, xattrs and hardlinks are not kept). Returns the
 * copy's path, or undefined when the image has no such directory. A path that is a symlink in the image
 * counts as absent: rdump writes it as a symlink, which on the host would point at the host's own files.
 */
export async function extractDirectory(
  runner: Runner,
  image: string,
  dir: string,
  destDir: string,
): Promise<string | undefined> {
  const r = await runner.run(
    ['debugfs', '-R', `rdump ${debugfsQuote(dir)} ${debugfsQuote(destDir)}`, image],
    {
      allowFailure: true,
    },
  );
  const copy = join(destDir, basename(dir));
  const made = await lstat(copy).catch(() => undefined);
  if (made?.isDirectory()) return copy;
  if (made) {
    await rm(copy, { recursive: true, force: true });
    return undefined;
  }
  if (/not found/i.test(r.stderr)) return undefined;
  throw operationFailed(`copying ${dir} out of ${image} failed: ${r.stderr.trim()}`);
}
