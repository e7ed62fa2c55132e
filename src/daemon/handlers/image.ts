import type { ImageService } from '../services/images/index.js';
import type { WarmTemplates } from '../services/snapshots/index.js';
import type { VmService } from '../services/vms/index.js';
import type { HandlerGroup } from './types.js';

/** `image.*` handlers: thin, each calls one service function. */
export function imageHandlers(deps: {
  images: ImageService;
  templates?: Pick<WarmTemplates, 'forImage'> | undefined;
  /** Drops the work-disk templates of an image removed or promoted (a cache must not outlive its image). */
  vms?: Pick<VmService, 'pruneWorkTemplates' | 'settleDeletes'> | undefined;
}): HandlerGroup<'image'> {
  const { images } = deps;
  return {
    'image.list': async () => ({ images: images.list() }),
    'image.show': async ({ name }) => {
      const shown = await images.show(name);
      const warm = deps.templates?.forImage(shown.image.id) ?? [];
      return {
        ...shown,
        warmTemplates: warm.map((t) => ({
          name: t.name,
          spec: t.spec,
          sizeBytes: t.sizeBytes,
          createdAt: t.createdAt,
        })),
      };
    },
    'image.catalog': async () => ({
      entries: (await images.catalog()).map(({ entry, state }) => ({
        name: entry.name,
        kind: entry.kind,
        distro: entry.distro,
        arch: entry.arch,
        kernelRef: entry.kernelRef,
        description: entry.description,
        sizeBytes: entry.sizeBytes,
        state,
      })),
    }),
    'image.pull': async (p, ctx) => ({
      image: await images.pull(p, { progress: ctx.progress, signal: ctx.signal }),
    }),
    'image.import': async (p, ctx) => ({
      image: await images.importTar(p, { progress: ctx.progress, signal: ctx.signal }),
    }),
    'image.register': async (p) => ({ image: await images.register(p) }),
    'image.promote': async ({ name }, ctx) => {
      const image = await images.promote(name, { progress: ctx.progress, signal: ctx.signal });
      await deps.vms?.pruneWorkTemplates();
      return { image };
    },
    'image.delete': async ({ name }) => {
      await deps.vms?.settleDeletes(); // a VM `vm delete` answered for may still be on the image's disks
      await images.remove(name);
      await deps.vms?.pruneWorkTemplates();
      return { name };
    },
    'image.cachePrune': async ({ dryRun }) => images.pruneCache({ dryRun }),
    'image.bundle': async (p, ctx) => images.bundle(p, { progress: ctx.progress, signal: ctx.signal }),
  };
}
