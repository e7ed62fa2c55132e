import { z } from 'zod';
import { imageConfigSchema } from '../../model/image.js';
import { catalogEntryName, catalogSchema } from '../common.js';

const name = catalogEntryName('image');

const common = {
  name,
  distro: z.string().min(1),
  arch: z.string().min(1),
  /** The kernel catalog entry this image boots with; pulled on first use. */
  kernelRef: z.string().min(1).optional(),
  description: z.string().default(''),
};

/** A prebuilt image: a `.tar.zst` holding exactly rootfs.ext4 and manifest.json, pinned by sha256 and size. */
export const bundleEntrySchema = z.strictObject({
  ...common,
  kind: z.literal('bundle'),
  url: z.url({ protocol: /^https?$/ }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: z.number().int().positive(),
});

/**
 * An image built on this host from a distribution's archive. `debootstrap` is the only builder today;
 * apt inside debootstrap verifies every package against the archive keyring.
 */
export const recipeEntrySchema = z.strictObject({
  ...common,
  kind: z.literal('recipe'),
  builder: z.literal('debootstrap'),
  suite: z.string().regex(/^[a-z][a-z0-9-]*$/),
  mirror: z.url({ protocol: /^https?$/ }),
  variant: z.enum(['minbase', 'buildd', 'fakechroot']).default('minbase'),
  /** Extra packages (`--include`), Debian package names only. */
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9.+-]+$/)).default([]),
  /** ext4 size; default is derived from the content. */
  sizeBytes: z.number().int().positive().optional(),
  /**
   * Services their packages enable at boot that are left to their sockets instead (the boot does not grow):
   * their `*.wants/` links are removed after debootstrap; the socket units stay enabled.
   */
  socketActivated: z.array(z.string().regex(/^[a-z0-9][a-z0-9@._-]*\.service$/)).default([]),
  /** Put the kernel's modules in the root filesystem (/usr/lib/modules/<version>), for modprobe in the guest. */
  kernelModules: z.boolean().default(false),
});

export const imageCatalogEntrySchema = z.discriminatedUnion('kind', [bundleEntrySchema, recipeEntrySchema]);

/** catalog.json: names unique. */
export const imageCatalogSchema = catalogSchema('image', imageCatalogEntrySchema);

/** manifest.json inside a bundle. */
export const bundleManifestSchema = z.strictObject({
  version: z.literal(1),
  name,
  distro: z.string().default('unknown'),
  arch: z.string().min(1),
  kernelRef: z.string().min(1).optional(),
  description: z.string().default(''),
  config: imageConfigSchema.default({}),
});

export type ImageCatalog = z.infer<typeof imageCatalogSchema>;
export type ImageCatalogEntry = z.infer<typeof imageCatalogEntrySchema>;
export type BundleEntry = z.infer<typeof bundleEntrySchema>;
export type RecipeEntry = z.infer<typeof recipeEntrySchema>;
export type BundleManifest = z.infer<typeof bundleManifestSchema>;
