import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  findImageEntry,
  type ImageCatalog,
  type ImageCatalogEntry,
  lookupImageEntry,
} from '../../../catalog/images/index.js';
import { hostKernelArch } from '../../../kernel/index.js';
import { BangerError, badRequest } from '../../../model/errors.js';
import type { Image } from '../../../model/image.js';
import { validateArtifactName } from '../../../model/names.js';
import { type FilledImage, installImage, type NameLocks } from './install.js';
import { checkKernelInputs, ensureKernel, type KernelInputs, stageKernel } from './kernel-inputs.js';
import { DEFAULT_IMAGE_CONFIG, defaultImageName } from './naming.js';
import type { ImageOpOptions, PullParams } from './service.js';
import type { ImageServiceDeps } from './service-deps.js';
import { fillFromBundle } from './sources/bundle.js';
import { fillFromOci } from './sources/oci.js';
import { kernelModulesTarball, recipeTarball } from './sources/recipe.js';
import { buildRootfsInto, tarLayer } from './sources/tar.js';

/** A bare word (no registry, path, tag or digest) is a catalog name, never a Docker Hub shorthand. */
export const isBareWord = (ref: string) => /^[A-Za-z0-9._-]+$/.test(ref);

/**
 * `image pull`: a catalog entry (bundle download or recipe build) or an OCI reference, each into a fresh
 * staging directory published as one store row.
 */
export function createPull(
  deps: ImageServiceDeps,
  locks: NameLocks,
  catalog: () => Promise<ImageCatalog>,
): (p: PullParams, o?: ImageOpOptions) => Promise<Image> {
  const installDeps = { store: deps.store, imagesDir: deps.imagesDir, locks };
  const pullEntry = (entry: ImageCatalogEntry, p: PullParams, o: ImageOpOptions) => {
    if (entry.arch !== hostKernelArch()) {
      throw badRequest(`image ${entry.name} is for ${entry.arch}, this host is ${hostKernelArch()}`);
    }
    const kernel: KernelInputs = p.kernelRef || p.kernel ? p : { kernelRef: entry.kernelRef };
    return installImage(installDeps, p.name ?? entry.name, async (ctx): Promise<FilledImage> => {
      let filled: FilledImage;
      if (entry.kind === 'bundle') {
        const manifest = await fillFromBundle(deps, ctx, entry, o);
        filled = {
          source: { kind: 'bundle', url: entry.url, sha256: entry.sha256 },
          config: { ...DEFAULT_IMAGE_CONFIG, ...manifest.config },
          artifacts: {},
        };
        if (!p.kernelRef && !p.kernel && !entry.kernelRef && manifest.kernelRef)
          kernel.kernelRef = manifest.kernelRef;
      } else {
        const workDir = join(ctx.staging, '.recipe');
        try {
          const tarball = await recipeTarball({
            runner: deps.runner,
            entry,
            workDir,
            cacheDir: deps.recipeCacheDir,
            ...o,
          });
          const layers = [await tarLayer({ file: tarball, pipeHint: '' }, deps.runner, o)];
          const modulesFrom = entry.kernelModules
            ? (p.kernelRef ?? (p.kernel ? undefined : entry.kernelRef))
            : undefined;
          if (modulesFrom) {
            const modules = await kernelModulesTarball({
              runner: deps.runner,
              kernel: await ensureKernel(deps.kernels, modulesFrom, o),
              workDir,
              signal: o.signal,
            });
            if (modules) layers.push(await tarLayer({ file: modules, pipeHint: '' }, deps.runner, o));
          }
          const { reportPath } = await buildRootfsInto(deps, ctx, layers, {
            sizeBytes: p.sizeBytes ?? entry.sizeBytes,
            ...o,
          });
          filled = {
            source: { kind: 'recipe', recipe: entry.name },
            config: DEFAULT_IMAGE_CONFIG,
            artifacts: { reportPath },
          };
        } finally {
          await rm(workDir, { recursive: true, force: true });
        }
      }
      const k = await stageKernel({
        inputs: kernel,
        kernels: deps.kernels,
        runner: deps.runner,
        ...ctx,
        ...o,
      });
      return { ...filled, artifacts: { ...filled.artifacts, ...k } };
    });
  };

  const pull = async (p: PullParams, o: ImageOpOptions = {}): Promise<Image> => {
    checkKernelInputs(p);
    if (p.name !== undefined) validateArtifactName('image', p.name);
    const cat = await catalog();
    const entry = lookupImageEntry(cat, p.ref);
    if (entry) return pullEntry(entry, p, o);
    if (isBareWord(p.ref)) {
      const err = (() => {
        try {
          findImageEntry(cat, p.ref);
        } catch (e) {
          return e as BangerError;
        }
      })();
      throw new BangerError('not_found', err?.message ?? `image ${p.ref} is not in the catalog`, {
        hint: `for a registry image give the full reference, e.g. docker.io/library/${p.ref.toLowerCase()}:latest`,
      });
    }
    const name = p.name ?? defaultImageName(p.ref);
    return installImage(installDeps, name, async (ctx) => {
      const filled = await fillFromOci(deps, ctx, p.ref, {
        platform: p.platform,
        sizeBytes: p.sizeBytes,
        ...o,
      });
      const k = await stageKernel({ inputs: p, kernels: deps.kernels, runner: deps.runner, ...ctx, ...o });
      return { ...filled, artifacts: { ...filled.artifacts, ...k } };
    });
  };

  return pull;
}
