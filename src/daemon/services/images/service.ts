import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import {
  type ImageCatalogEntry,
  loadImageCatalog,
  lookupImageEntry,
  type PackedBundle,
  packBundle,
} from '../../../catalog/images/index.js';
import { hostKernelArch } from '../../../kernel/index.js';
import { BangerError, badRequest } from '../../../model/errors.js';
import type { Image } from '../../../model/image.js';
import { validateArtifactName } from '../../../model/names.js';
import type { ProgressSink } from '../../../model/progress.js';
import { installImage, NameLocks } from './install.js';
import { checkKernelInputs, type KernelInputs, stageKernel } from './kernel-inputs.js';
import { createStaging, IMAGE_FILES, removeImageDir, sweepImagesDir } from './layout.js';
import { unmountUnder } from './mounts.js';
import { DEFAULT_IMAGE_CONFIG, defaultImageName, newImageId } from './naming.js';
import { createPull, isBareWord } from './pull.js';
import { promoteImage, registerImage } from './register.js';
import type { ImageServiceDeps } from './service-deps.js';
import { buildRootfsInto, tarLayer } from './sources/tar.js';

/** Progress and cancellation of one long operation. */
export interface ImageOpOptions {
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface PullParams extends KernelInputs {
  /** A catalog name or an OCI reference. */
  ref: string;
  name?: string | undefined;
  platform?: string | undefined;
  sizeBytes?: number | undefined;
}

export interface ImportParams extends KernelInputs {
  name: string;
  /** Absolute path of a tarball, or of the FIFO the CLI feeds from its stdin. */
  file: string;
  /** `file` is the CLI's stdin FIFO: the one non-regular file accepted (and recorded as `stdin`). */
  stdin?: boolean | undefined;
  /** What `image show` records as the source (`stdin` for `-`). */
  label?: string | undefined;
  sizeBytes?: number | undefined;
}

export interface RegisterParams extends KernelInputs {
  name: string;
  rootfs: string;
}

export interface BundleParams {
  name: string;
  /** An ext4 to pack as it is … */
  rootfs?: string | undefined;
  /** … or a rootfs tarball (file, or the CLI's stdin FIFO) converted through the import pipeline first. */
  rootfsTar?: string | undefined;
  /** `rootfsTar` is the CLI's stdin FIFO. */
  stdin?: boolean | undefined;
  kernelRef?: string | undefined;
  distro?: string | undefined;
  arch?: string | undefined;
  description?: string | undefined;
  sizeBytes?: number | undefined;
  /** Absolute path of the .tar.zst to write. */
  out: string;
  /** zstd level (default 19). */
  level?: number | undefined;
}

export interface ShownImage {
  image: Image;
  report?: unknown;
  usedBy: string[];
}

export interface CatalogListing {
  entry: ImageCatalogEntry;
  state: 'pulled' | 'available';
}

export interface PruneResult {
  dir: string;
  removed: number;
  bytes: number;
  dryRun: boolean;
}

/** The daemon's image service: one per daemon, over store + catalog + oci + rootfs + guest + kernels. */
export interface ImageService {
  list(): Image[];
  show(name: string): Promise<ShownImage>;
  catalog(): Promise<CatalogListing[]>;
  pull(p: PullParams, o?: ImageOpOptions): Promise<Image>;
  importTar(p: ImportParams, o?: ImageOpOptions): Promise<Image>;
  register(p: RegisterParams): Promise<Image>;
  promote(name: string, o?: ImageOpOptions): Promise<Image>;
  remove(name: string): Promise<Image>;
  /** The image called `nameOrRef`, pulled first when it does not exist (used by `vm run`). */
  ensure(nameOrRef: string, o?: ImageOpOptions): Promise<Image>;
  pruneCache(o: { dryRun: boolean }): Promise<PruneResult>;
  bundle(p: BundleParams, o?: ImageOpOptions): Promise<PackedBundle>;
  /** Removes staging, trash and row-less image directories left by a crash; call once at daemon start. */
  sweep(): Promise<void>;
}

export function createImageService(deps: ImageServiceDeps): ImageService {
  const { store } = deps;
  const locks = new NameLocks();
  const installDeps = { store, imagesDir: deps.imagesDir, locks };
  const catalog = () => loadImageCatalog({ override: deps.catalogOverride, fetch: deps.fetch });

  const pull = createPull(deps, locks, catalog);

  return {
    list: () => store.images.list(),

    async show(name) {
      const image = store.images.getByName(name);
      let report: unknown;
      if (image.artifacts.reportPath && existsSync(image.artifacts.reportPath)) {
        report = JSON.parse(await readFile(image.artifacts.reportPath, 'utf8'));
      }
      return { image, report, usedBy: store.vms.usersOfImage(image.id) };
    },

    async catalog() {
      return (await catalog()).entries.map((entry) => ({
        entry,
        state: store.images.findByName(entry.name) ? 'pulled' : 'available',
      }));
    },

    pull,

    async importTar(p, o = {}) {
      checkKernelInputs(p);
      const label = p.label ?? (p.stdin ? 'stdin' : p.file);
      const layer = await tarLayer(
        {
          file: p.file,
          stdin: p.stdin,
          pipeHint: `pipe it through stdin: banger image import ${p.name} - < ${p.file}`,
        },
        deps.runner,
        o,
      );
      return installImage(installDeps, p.name, async (ctx) => {
        const { reportPath } = await buildRootfsInto(deps, ctx, [layer], {
          sizeBytes: p.sizeBytes,
          ...o,
        }).catch((err: unknown) => {
          // The builder speaks of "layer 1"; the user gave a tarball, so name it.
          if (!(err instanceof BangerError) || err.code !== 'bad_request') throw err;
          const message = err.message.replace(/^layer 1( is)?:? */, (_m, is) => (is ? 'it is ' : ''));
          throw new BangerError('bad_request', `cannot import ${label}: ${message}`, {
            hint: err.hint,
            cause: err,
          });
        });
        const k = await stageKernel({ inputs: p, kernels: deps.kernels, runner: deps.runner, ...ctx, ...o });
        return {
          source: { kind: 'tar', file: label },
          config: DEFAULT_IMAGE_CONFIG,
          artifacts: { reportPath, ...k },
        };
      });
    },

    register: (p) => registerImage(deps, locks, p),
    promote: (name, o = {}) => promoteImage(deps, locks, name, o),

    async remove(name) {
      validateArtifactName('image', name);
      return locks.run(name, async () => {
        const image = store.images.getByName(name);
        const users = store.vms.usersOfImage(image.id);
        if (users.length > 0) {
          throw badRequest(`image ${name} is used by VM${users.length > 1 ? 's' : ''} ${users.join(', ')}`, {
            hint: `delete ${users.length > 1 ? 'them' : 'it'} first: banger vm rm ${users.join(' ')}`,
          });
        }
        store.images.delete(image.id);
        if (image.managed) await removeImageDir(deps.imagesDir, image.id);
        deps.log.info({ image: name, id: image.id }, 'image removed');
        return image;
      });
    },

    async ensure(nameOrRef, o = {}) {
      const existing = store.images.findByName(nameOrRef);
      if (existing) return existing;
      const entry = lookupImageEntry(await catalog(), nameOrRef);
      const name = entry ? entry.name : isBareWord(nameOrRef) ? nameOrRef : defaultImageName(nameOrRef);
      const named = store.images.findByName(name);
      if (named) return named;
      try {
        return await pull({ ref: nameOrRef }, o);
      } catch (err) {
        // Another caller pulled the same name while we waited for its lock: theirs is ours.
        if (err instanceof BangerError && err.code === 'already_exists') return store.images.getByName(name);
        throw err;
      }
    },

    async pruneCache({ dryRun }) {
      const { removed, bytes } = await deps.parts.puller.pruneCache({ dryRun });
      return { dir: deps.ociDir, removed, bytes, dryRun };
    },

    async bundle(p, o = {}) {
      validateArtifactName('image', p.name);
      if ((p.rootfs === undefined) === (p.rootfsTar === undefined)) {
        throw badRequest('give exactly one of --rootfs <ext4> or --rootfs-tar <file|->');
      }
      if (!isAbsolute(p.out)) throw badRequest(`bundle output ${p.out} must be an absolute path`);
      const manifest = {
        version: 1 as const,
        name: p.name,
        distro: p.distro ?? 'unknown',
        arch: p.arch ?? hostKernelArch(),
        ...(p.kernelRef ? { kernelRef: p.kernelRef } : {}),
        description: p.description ?? '',
        config: DEFAULT_IMAGE_CONFIG,
      };
      const pack = (rootfsPath: string) => {
        o.progress?.({ kind: 'stage', stage: 'pack', message: `zstd -${p.level ?? 19} into ${p.out}` });
        return packBundle({ rootfsPath, manifest, out: p.out, level: p.level ?? 19, ...o });
      };
      if (p.rootfs !== undefined) {
        if (!isAbsolute(p.rootfs) || !existsSync(p.rootfs))
          throw badRequest(`rootfs ${p.rootfs} does not exist`);
        return pack(p.rootfs);
      }
      const rootfsTar = p.rootfsTar as string;
      const layer = await tarLayer(
        {
          file: rootfsTar,
          stdin: p.stdin,
          pipeHint: `pipe it through stdin: banger image bundle --name ${p.name} --rootfs-tar - --out ${p.out} < ${rootfsTar}`,
        },
        deps.runner,
        o,
      );
      const id = newImageId();
      const staging = await createStaging(deps.imagesDir, id);
      try {
        await buildRootfsInto(deps, { staging, finalDir: staging }, [layer], {
          sizeBytes: p.sizeBytes,
          ...o,
        });
        return await pack(join(staging, IMAGE_FILES.rootfs));
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    },

    async sweep() {
      await mkdir(deps.imagesDir, { recursive: true, mode: 0o700 });
      // A recipe build killed mid-debootstrap leaves /proc and /sys mounted inside its staging tree.
      const hasRow = (id: string) => store.images.findById(id) !== undefined;
      const { leftovers, orphans } = await sweepImagesDir(deps.imagesDir, hasRow, (dir) =>
        unmountUnder(deps.runner, dir),
      );
      if (leftovers.length > 0)
        deps.log.info({ removed: leftovers }, 'removed image staging left by a crash');
      if (orphans.length > 0)
        deps.log.warn(
          { removed: orphans },
          'removed image directories without a store row (a crash mid-install)',
        );
    },
  };
}
