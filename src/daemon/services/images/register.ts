import { open, rm, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { alreadyExists, badRequest } from '../../../model/errors.js';
import type { Image } from '../../../model/image.js';
import { validateArtifactName } from '../../../model/names.js';
import type { NameLocks } from './install.js';
import { checkKernelInputs, ensureKernel, stageKernel } from './kernel-inputs.js';
import { createStaging, IMAGE_FILES, imageDir, publishStaging } from './layout.js';
import { DEFAULT_IMAGE_CONFIG, newImageId } from './naming.js';
import type { ImageOpOptions, RegisterParams } from './service.js';
import type { ImageServiceDeps } from './service-deps.js';

/** ext4's superblock magic 0xEF53 sits at byte 1080 (superblock at 1024, s_magic at +56). */
async function checkExt4(path: string): Promise<number> {
  if (!isAbsolute(path)) throw badRequest(`rootfs ${path} must be an absolute path`);
  const st = await stat(path).catch((err: unknown) => {
    throw badRequest(`rootfs ${path} does not exist`, { cause: err });
  });
  if (!st.isFile()) throw badRequest(`rootfs ${path} is not a regular file`);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    await fh.read(buf, 0, 2, 1080);
    if (buf.readUInt16LE(0) !== 0xef53) throw badRequest(`rootfs ${path} is not an ext4 filesystem`);
  } finally {
    await fh.close();
  }
  return st.size;
}

/**
 * Records a host-side image stack without copying it (unmanaged): the rootfs and kernel stay where they
 * are and are used as they are. `--kernel-ref` must name a local kernel.
 */
export async function registerImage(
  deps: ImageServiceDeps,
  locks: NameLocks,
  p: RegisterParams,
): Promise<Image> {
  validateArtifactName('image', p.name);
  checkKernelInputs(p);
  const sizeBytes = await checkExt4(p.rootfs);
  let artifacts: Image['artifacts'] = { rootfsPath: p.rootfs };
  if (p.kernelRef) {
    const k = await deps.kernels.show(p.kernelRef).catch((err: unknown) => {
      throw badRequest(`kernel ${p.kernelRef} is not local`, {
        hint: "run 'banger kernel list'",
        cause: err,
      });
    });
    artifacts = { ...artifacts, kernelRef: p.kernelRef, kernelPath: k.kernelPath, initrdPath: k.initrdPath };
  } else if (p.kernel) {
    for (const f of [p.kernel, p.initrd, p.modules]) {
      if (f) await stat(f).catch(() => Promise.reject(badRequest(`${f} does not exist`)));
    }
    artifacts = { ...artifacts, kernelPath: p.kernel, initrdPath: p.initrd, modulesDir: p.modules };
  }
  return locks.run(p.name, async () => {
    if (deps.store.images.findByName(p.name)) throw alreadyExists(`image ${p.name} already exists`);
    const now = new Date().toISOString();
    const image: Image = {
      id: newImageId(),
      name: p.name,
      managed: false,
      source: { kind: 'registered' },
      artifacts,
      config: DEFAULT_IMAGE_CONFIG,
      sizeBytes,
      createdAt: now,
      updatedAt: now,
    };
    deps.store.images.insert(image);
    return image;
  });
}

/**
 * Copies a registered image into a daemon-owned directory (sparse copy of the rootfs, guest assets
 * written into the copy, kernel staged) and marks it managed. The user's files are never modified.
 */
export async function promoteImage(
  deps: ImageServiceDeps,
  locks: NameLocks,
  name: string,
  o: ImageOpOptions,
): Promise<Image> {
  validateArtifactName('image', name);
  return locks.run(name, async () => {
    const image = deps.store.images.getByName(name);
    if (image.managed) throw badRequest(`image ${name} is already managed`);
    const a = image.artifacts;
    await checkExt4(a.rootfsPath);
    if (a.kernelRef) await ensureKernel(deps.kernels, a.kernelRef, o);
    const finalDir = imageDir(deps.imagesDir, image.id);
    const staging = await createStaging(deps.imagesDir, image.id);
    try {
      o.progress?.({ kind: 'stage', stage: 'copy', message: `copying ${a.rootfsPath}` });
      const rootfs = join(staging, IMAGE_FILES.rootfs);
      await deps.runner.run(['cp', '--sparse=always', '--', a.rootfsPath, rootfs], { signal: o.signal });
      const assets = deps.parts.guest.guestAssets();
      if (assets.length > 0) await deps.parts.rootfs.injectAssets(rootfs, assets, deps.runner);
      const kernel = a.kernelRef
        ? { kernelRef: a.kernelRef }
        : { kernel: a.kernelPath, initrd: a.initrdPath, modules: a.modulesDir };
      const k = await stageKernel({
        inputs: kernel,
        kernels: deps.kernels,
        runner: deps.runner,
        staging,
        finalDir,
        ...o,
      });
      await publishStaging(staging, deps.imagesDir, image.id);
      const promoted: Image = {
        ...image,
        managed: true,
        artifacts: { rootfsPath: join(finalDir, IMAGE_FILES.rootfs), ...k },
        updatedAt: new Date().toISOString(),
      };
      deps.store.images.update(promoted);
      return promoted;
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  });
}
