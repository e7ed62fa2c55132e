import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Ext4Image } from '../ext4/index.js';
import { BangerError, operationFailed } from '../model/errors.js';
import { copyTree, type ExtractLimits } from './extract-tree.js';

export type { ExtractLimits } from './extract-tree.js';

/** Enough for any home directory a VM is seeded with; callers pass the disk size as the byte cap. */
export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = {
  maxBytes: 1024 ** 3,
  maxEntries: 200_000,
  maxDepth: 64,
};

/**
 * Copies a directory of an ext4 image to `destDir/<its name>` without mounting and without e2fsprogs: the
 * image is read by banger's own defensive reader and every file is created fresh under the copy, never
 * through a name that was there before (see copyTree). Keeps owners, modes (setuid, setgid, sticky too),
 * mtimes and symlinks (targets verbatim); devices, FIFOs, sockets, xattrs and hardlinks are not kept
 * (a hardlinked file becomes copies). `destDir` must be a private directory the caller made.
 *
 * Returns the copy's path, or undefined when the image has no such directory. A path that is a symlink
 * in the image counts as absent: followed on the host, it would point at the host's own files. An image
 * that is damaged or hostile (a name twice, a loop, a block past the end, over a limit) is refused and
 * nothing of the copy is left.
 */
export async function extractDirectory(
  image: string,
  dir: string,
  destDir: string,
  limits: Partial<ExtractLimits> = {},
): Promise<string | undefined> {
  const copy = join(destDir, basename(dir));
  let made = false;
  let img: Ext4Image | undefined;
  try {
    img = await Ext4Image.open(image);
    const top = await img.lookup(dir);
    if (top?.kind !== 'directory') return undefined;
    await mkdir(copy, { mode: 0o700 });
    made = true;
    await copyTree(img, top, Buffer.from(copy), { ...DEFAULT_EXTRACT_LIMITS, ...limits });
    return copy;
  } catch (err) {
    if (made) await rm(copy, { recursive: true, force: true });
    const why = err instanceof Error ? err.message : String(err);
    // The reader's refusals already name the image.
    const what = why.includes(image) ? `copying ${dir} failed` : `copying ${dir} out of ${image} failed`;
    throw operationFailed(`${what}: ${why}`, {
      hint: err instanceof BangerError ? err.hint : undefined,
      cause: err,
    });
  } finally {
    await img?.close();
  }
}
