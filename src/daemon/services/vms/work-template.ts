import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createWorkDisk } from '../../../host/index.js';
import { toBangerError } from '../../../model/errors.js';
import type { Image } from '../../../model/image.js';
import { extractDirectory } from '../../../rootfs/index.js';
import { WORK_DISK_MOUNT, WORK_DISK_SEEDED_MARKER } from './guest-setup.js';
import type { VmServiceDeps } from './types.js';

/**
 * Work disks are copies of a per-image, per-size template: reading the image's /root and running
 * mkfs.ext4 + debugfs cost ~85 ms of every `vm create`; a sparse copy of a made disk costs one `cp`
 * (a clone where the filesystem can). The template lives under `<stateDir>/work-templates`, named by the
 * image's id, its rootfs's size and mtime (a rebuilt image gets a new one) and the disk size. It is a cache:
 * not a VM's side effect, so no ledger entry; a half-made one is a `.tmp-*` dir, removed on a later make.
 */
const inFlight = new Map<string, Promise<string>>();
const refilling = new Set<string>();

/** The one ready copy of a template; its name starts with the template's, so it goes with a stale one. */
const spareOf = (template: string) => `${template}.spare`;

/**
 * Moves the template's spare copy to `dest` (a rename: the copy, most of a `vm create`, was made before);
 * false when there is none (or it is on another filesystem), and the caller copies. Either way the next
 * spare is made in the background.
 */
export async function takeSpareCopy(deps: VmServiceDeps, template: string, dest: string): Promise<boolean> {
  try {
    await rename(spareOf(template), dest);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EXDEV') throw err;
    return false;
  } finally {
    // After this create has answered: spawning cp blocks the event loop for milliseconds.
    setImmediate(() => refillSpare(deps, template));
  }
}

/** Makes the spare copy under a `.tmp-` name (removed by a later template make if the daemon dies), then renames it. */
function refillSpare(deps: VmServiceDeps, template: string): void {
  if (refilling.has(template)) return;
  refilling.add(template);
  const tmp = join(dirname(template), `.tmp-${process.pid}-spare-${randomBytes(6).toString('hex')}`);
  void (async () => {
    try {
      await deps.runner.run(['cp', '--sparse=always', '--reflink=auto', '--', template, tmp]);
      await rename(tmp, spareOf(template));
      // The template went (its image was removed or rebuilt) while the copy was made: so does its spare.
      if (!(await exists(template))) await rm(spareOf(template), { force: true });
    } catch (err) {
      await rm(tmp, { force: true });
      deps.log.warn({ err: toBangerError(err).message }, 'making a spare work disk failed');
    } finally {
      refilling.delete(template);
    }
  })();
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

const templatesDir = (stateDir: string) => join(stateDir, 'work-templates');

/** The name prefix of `image`'s templates for its rootfs as it is now; undefined when the rootfs is gone. */
async function currentPrefix(image: Image): Promise<string | undefined> {
  const rootfs = await stat(image.artifacts.rootfsPath).catch(() => undefined);
  return rootfs && `${image.id}-${rootfs.size}.${Math.trunc(rootfs.mtimeMs)}-`;
}

/**
 * Removes every template (and its spare) that no image of `images` can use any more: of an image that was
 * removed, or of an older rootfs of one that was rebuilt; and what a dead daemon left half made. Run at
 * daemon start and after an image is removed or promoted, so a cache entry never outlives its image.
 */
export async function pruneWorkTemplates(stateDir: string, images: readonly Image[]): Promise<string[]> {
  const dir = templatesDir(stateDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  if (names.length === 0) return [];
  const keep = (await Promise.all(images.map(currentPrefix))).filter((p) => p !== undefined);
  const mine = `.tmp-${process.pid}-`;
  const removed: string[] = [];
  for (const name of names) {
    const live = name.startsWith('.tmp-')
      ? name.startsWith(mine)
      : keep.some((prefix) => name.startsWith(prefix));
    if (live) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** The path of the template for `image` and `sizeBytes`, made first if missing. */
export async function workDiskTemplate(
  deps: VmServiceDeps,
  image: Image,
  sizeBytes: number,
): Promise<string> {
  const dir = templatesDir(deps.stateDir);
  const rootfs = await stat(image.artifacts.rootfsPath);
  const prefix = `${image.id}-`;
  const current = `${prefix}${rootfs.size}.${Math.trunc(rootfs.mtimeMs)}-`;
  const path = join(dir, `${current}${sizeBytes}.ext4`);
  if (await exists(path)) return path;
  let pending = inFlight.get(path);
  if (!pending) {
    pending = makeTemplate(deps, image, sizeBytes, dir, path, { prefix, current }).finally(() =>
      inFlight.delete(path),
    );
    inFlight.set(path, pending);
  }
  return pending;
}

async function makeTemplate(
  deps: VmServiceDeps,
  image: Image,
  sizeBytes: number,
  dir: string,
  path: string,
  names: { prefix: string; current: string },
): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Templates of this image for an older rootfs, and what an earlier daemon left half-made, go now (this
  // daemon's own `.tmp-<pid>-` dirs may be other sizes in the making).
  const mine = `.tmp-${process.pid}-`;
  for (const name of await readdir(dir)) {
    const old = name.startsWith(names.prefix) && !name.startsWith(names.current);
    const crashed = name.startsWith('.tmp-') && !name.startsWith(mine);
    if (old || crashed) await rm(join(dir, name), { recursive: true, force: true });
  }
  const tmp = await mkdtemp(join(dir, mine));
  try {
    const disk = join(tmp, 'work.ext4');
    await createSeededWorkDisk(deps, image, tmp, disk, sizeBytes);
    await rename(disk, path);
    return path;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * A work disk with the image's /root in it (dotfiles) and the marker that says so, so the guest only has to
 * mount it. When /root cannot be read out of the image the disk is made empty and unmarked, and the guest
 * seeds it at its first mount instead.
 */
async function createSeededWorkDisk(
  deps: VmServiceDeps,
  image: Image,
  tmp: string,
  path: string,
  sizeBytes: number,
): Promise<void> {
  const seedDir = join(tmp, 'seed');
  await mkdir(seedDir, { mode: 0o700 });
  let seed: string | undefined;
  try {
    // The disk could not hold more than its size, so neither may the copy.
    seed = await extractDirectory(image.artifacts.rootfsPath, WORK_DISK_MOUNT, seedDir, {
      maxBytes: sizeBytes,
    });
    if (!seed) {
      seed = join(seedDir, 'root');
      await mkdir(seed, { mode: 0o700 });
    }
    await writeFile(join(seed, WORK_DISK_SEEDED_MARKER), '');
  } catch (err) {
    deps.log.warn(
      { err: toBangerError(err).message },
      "the image's /root could not be read; the guest seeds it",
    );
    seed = undefined;
  }
  await createWorkDisk(deps.runner, { path, sizeBytes, seedDir: seed });
}
