/**
 * The image catalog (embedded `catalog.json` or the `image_catalog` override) and image bundles: a
 * `.tar.zst` holding exactly rootfs.ext4 and manifest.json, checked against a pinned sha256 while it streams.
 */
export {
  BUNDLE_MANIFEST,
  BUNDLE_ROOTFS,
  type PackBundleOptions,
  type PackedBundle,
  packBundle,
  type UnpackBundleOptions,
  unpackBundle,
} from './bundle.js';
export {
  checkDownloadUrl,
  embeddedImageCatalogPath,
  findImageEntry,
  loadImageCatalog,
  lookupImageEntry,
  parseImageCatalog,
} from './load.js';
export {
  type BundleEntry,
  type BundleManifest,
  bundleEntrySchema,
  bundleManifestSchema,
  type ImageCatalog,
  type ImageCatalogEntry,
  imageCatalogEntrySchema,
  imageCatalogSchema,
  type RecipeEntry,
  recipeEntrySchema,
} from './schema.js';
