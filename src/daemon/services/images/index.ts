/**
 * The daemon's image service: pull (catalog bundle, catalog recipe, OCI registry), tar import, register,
 * promote, delete, bundle, cache prune and `ensure` for `vm run`. It composes catalog + oci + rootfs +
 * guest + kernel + store; the rooms below arrive through `ImagePipelineParts` from the composition root.
 */
export type { ImagePipelineParts } from './contracts.js';
export { IMAGE_FILES, sweepImagesDir } from './layout.js';
export { DEFAULT_IMAGE_CONFIG, defaultImageName } from './naming.js';
export {
  type BundleParams,
  type CatalogListing,
  createImageService,
  type ImageOpOptions,
  type ImageService,
  type ImportParams,
  type PruneResult,
  type PullParams,
  type RegisterParams,
  type ShownImage,
} from './service.js';
export type { ImageServiceDeps } from './service-deps.js';
export { recipeKey, recipeTarball } from './sources/recipe.js';
export { detectCompression } from './tar-magic.js';
