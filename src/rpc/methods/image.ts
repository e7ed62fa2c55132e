import { z } from 'zod';
import { imageSchema } from '../../model/image.js';
import { vmSpecSchema } from '../../model/vm.js';
import { method, noParams } from './define.js';

const name = z.string().min(1);
const absPath = z.string().refine((p) => p.startsWith('/'), 'an absolute path on the daemon host');
/** `--kernel-ref` or the triple; both absent means VMs boot the configured default kernel. */
const kernelInputs = {
  kernelRef: z.string().min(1).optional(),
  kernel: absPath.optional(),
  initrd: absPath.optional(),
  modules: absPath.optional(),
};
const exclusiveKernel = (p: {
  kernelRef?: string | undefined;
  kernel?: string | undefined;
  initrd?: string | undefined;
  modules?: string | undefined;
}) => !(p.kernelRef && (p.kernel || p.initrd || p.modules));
const kernelMessage = '--kernel-ref cannot be combined with --kernel/--initrd/--modules';

export const catalogEntryInfoSchema = z.object({
  name: z.string(),
  kind: z.enum(['bundle', 'recipe']),
  distro: z.string(),
  arch: z.string(),
  kernelRef: z.string().optional(),
  description: z.string(),
  sizeBytes: z.number().optional(),
  state: z.enum(['pulled', 'available']),
});

/** `image.*` methods. Paths are absolute paths on the daemon host (the CLI resolves them). */
export const imageMethods = {
  'image.list': method(() => ({
    params: noParams,
    result: z.object({ images: z.array(imageSchema) }),
    summary: 'Every image in the store.',
  })),
  'image.show': method(() => ({
    params: z.strictObject({ name }),
    result: z.object({
      image: imageSchema,
      report: z.unknown().optional(),
      usedBy: z.array(z.string()),
      /** The warm templates `vm run` restores for this image (one per spec); none until a cold run made one. */
      warmTemplates: z
        .array(
          z.object({ name: z.string(), spec: vmSpecSchema, sizeBytes: z.number(), createdAt: z.string() }),
        )
        .default([]),
    }),
    summary: 'One image with its fidelity report, the VMs that use it and its warm templates.',
  })),
  'image.catalog': method(() => ({
    params: noParams,
    result: z.object({ entries: z.array(catalogEntryInfoSchema) }),
    summary: 'The image catalog, each entry pulled or available.',
  })),
  'image.pull': method(() => ({
    params: z
      .strictObject({
        ref: name,
        name: name.optional(),
        platform: z.string().optional(),
        sizeBytes: z.number().int().positive().optional(),
        ...kernelInputs,
      })
      .refine(exclusiveKernel, kernelMessage),
    result: z.object({ image: imageSchema }),
    summary: 'Pull a catalog image (bundle or recipe) or an OCI reference into the store (progress events).',
  })),
  'image.import': method(() => ({
    params: z
      .strictObject({
        name,
        file: absPath,
        /** file is the FIFO the CLI made for its stdin: the one non-regular file the daemon reads. */
        stdin: z.boolean().optional(),
        label: z.string().optional(),
        sizeBytes: z.number().int().positive().optional(),
        ...kernelInputs,
      })
      .refine(exclusiveKernel, kernelMessage),
    result: z.object({ image: imageSchema }),
    summary:
      "Import a rootfs tarball (plain, gzip, zstd, xz): a regular file, or the CLI's stdin FIFO (stdin).",
  })),
  'image.register': method(() => ({
    params: z.strictObject({ name, rootfs: absPath, ...kernelInputs }).refine(exclusiveKernel, kernelMessage),
    result: z.object({ image: imageSchema }),
    summary: 'Record an unmanaged image over host files (nothing copied).',
  })),
  'image.promote': method(() => ({
    params: z.strictObject({ name }),
    result: z.object({ image: imageSchema }),
    summary: 'Copy a registered image into daemon-owned files and mark it managed.',
  })),
  'image.delete': method(() => ({
    params: z.strictObject({ name }),
    result: z.object({ name: z.string() }),
    summary: 'Remove an image; refused while a VM uses it.',
  })),
  'image.cachePrune': method(() => ({
    params: z.strictObject({ dryRun: z.boolean().default(false) }),
    result: z.object({ dir: z.string(), removed: z.number(), bytes: z.number(), dryRun: z.boolean() }),
    summary: 'Empty the OCI blob cache (or measure it with dryRun).',
  })),
  'image.bundle': method(() => ({
    params: z
      .strictObject({
        name,
        rootfs: absPath.optional(),
        rootfsTar: absPath.optional(),
        stdin: z.boolean().optional(),
        kernelRef: z.string().min(1).optional(),
        distro: z.string().optional(),
        arch: z.string().optional(),
        description: z.string().optional(),
        sizeBytes: z.number().int().positive().optional(),
        out: absPath,
        level: z.number().int().min(1).max(22).optional(),
      })
      .refine(
        (p) => (p.rootfs === undefined) !== (p.rootfsTar === undefined),
        'give exactly one of rootfs or rootfsTar',
      ),
    result: z.object({ path: z.string(), sha256: z.string(), sizeBytes: z.number() }),
    summary: 'Pack an ext4 (or a rootfs tarball converted first) into a .tar.zst bundle for a catalog.',
  })),
} as const;
