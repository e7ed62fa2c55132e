import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Runner } from '../host/index.js';
import { operationFailed } from '../model/errors.js';
import { debugfsQuote } from './paths.js';

/**
 * Copies a directory of an ext4 image to `destDir/<its name>` without mounting (debugfs `rdump`, which
 * keeps owners, modes and symlinks; setuid/setgid bits, xattrs and hardlinks are not kept). Returns the
 * copy's path, or undefined when the image has no such directory.
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
  if (existsSync(copy)) return copy;
  if (/not found/i.test(r.stderr)) return undefined;
  throw operationFailed(`copying ${dir} out of ${image} failed: ${r.stderr.trim()}`);
}
