import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isImageId } from './naming.js';

/** Every file of a managed image directory `<imagesDir>/<id>/`. */
export const IMAGE_FILES = {
  rootfs: 'rootfs.ext4',
  /** The rootfs builder's fidelity report (JSON). */
  report: 'fidelity-report.json',
  /** Staged kernel: vmlinuz or vmlinux, optional initrd.img and modules/. */
  kernelDir: 'kernel',
} as const;

/** An image directory is built here, then renamed into place; a crash leaves only this, swept at start. */
const STAGING_PREFIX = '.staging-';
/** Deleted images are renamed here first, so a half-deleted image never looks like a real one. */
const TRASH_PREFIX = '.trash-';

export const imageDir = (imagesDir: string, id: string) => join(imagesDir, id);

/** Creates `<imagesDir>/.staging-<id>/` (same filesystem as the final place, so publish is one rename). */
export async function createStaging(imagesDir: string, id: string): Promise<string> {
  await mkdir(imagesDir, { recursive: true, mode: 0o700 });
  const dir = join(imagesDir, `${STAGING_PREFIX}${id}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/** Moves a finished staging directory into place. */
export async function publishStaging(staging: string, imagesDir: string, id: string): Promise<string> {
  const final = imageDir(imagesDir, id);
  await rename(staging, final);
  return final;
}

/** Removes an image directory: rename aside first, then delete at leisure. */
export async function removeImageDir(imagesDir: string, id: string): Promise<void> {
  const dir = imageDir(imagesDir, id);
  if (!existsSync(dir)) return;
  const trash = join(imagesDir, `${TRASH_PREFIX}${id}`);
  await rename(dir, trash);
  await rm(trash, { recursive: true, force: true });
}

/**
 * Removes what a crash left in the image store; call once at daemon start, before any install runs.
 * That is staging and trash directories, and image directories whose row was never written: an install
 * renames its staging directory into place and then inserts the row, so a crash between the two leaves a
 * directory no row names. Only names banger makes are touched, and an image directory with a row (managed
 * or not) is kept. `beforeRemove` gets each one first (the service unmounts what a killed debootstrap left
 * mounted inside).
 */
export async function sweepImagesDir(
  imagesDir: string,
  hasRow: (id: string) => boolean,
  beforeRemove: (dir: string) => Promise<void> = async () => {},
): Promise<{ leftovers: string[]; orphans: string[] }> {
  const swept = { leftovers: [] as string[], orphans: [] as string[] };
  if (!existsSync(imagesDir)) return swept;
  for (const entry of await readdir(imagesDir, { withFileTypes: true })) {
    const { name } = entry;
    const leftover = name.startsWith(STAGING_PREFIX) || name.startsWith(TRASH_PREFIX);
    const orphan = !leftover && entry.isDirectory() && isImageId(name) && !hasRow(name);
    if (!leftover && !orphan) continue;
    await beforeRemove(join(imagesDir, name));
    await rm(join(imagesDir, name), { recursive: true, force: true });
    (leftover ? swept.leftovers : swept.orphans).push(name);
  }
  return swept;
}
