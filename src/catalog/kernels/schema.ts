import { z } from 'zod';
import { catalogEntryName, catalogSchema } from '../common.js';

const name = catalogEntryName('kernel');

/** A prebuilt kernel bundle: a .tar.zst holding vmlinux or vmlinuz, and optionally initrd.img, config, modules/. */
export const tarballEntrySchema = z.strictObject({
  name,
  kind: z.literal('tarball'),
  distro: z.string().min(1),
  arch: z.string().min(1),
  kernelVersion: z.string().min(1),
  url: z.url({ protocol: /^https?$/ }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: z.number().int().positive(),
  description: z.string().default(''),
});

/** A kernel from the host's apt sources: `package` may be a metapackage, resolved when pulled. */
export const debianPackageEntrySchema = z.strictObject({
  name,
  kind: z.literal('debian-package'),
  distro: z.string().min(1),
  arch: z.string().min(1),
  package: z.string().regex(/^[a-z0-9][a-z0-9.+-]+$/),
  description: z.string().default(''),
});

export const kernelCatalogEntrySchema = z.discriminatedUnion('kind', [
  tarballEntrySchema,
  debianPackageEntrySchema,
]);

/** catalog.json: names unique. */
export const kernelCatalogSchema = catalogSchema('kernel', kernelCatalogEntrySchema);

export type KernelCatalog = z.infer<typeof kernelCatalogSchema>;
export type KernelCatalogEntry = z.infer<typeof kernelCatalogEntrySchema>;
export type TarballKernelEntry = z.infer<typeof tarballEntrySchema>;
export type DebianPackageKernelEntry = z.infer<typeof debianPackageEntrySchema>;
