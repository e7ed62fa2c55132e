export {
  embeddedKernelCatalogPath,
  findCatalogEntry,
  loadKernelCatalog,
  parseKernelCatalog,
} from './load.js';
export {
  type DebianPackageKernelEntry,
  type KernelCatalog,
  type KernelCatalogEntry,
  kernelCatalogEntrySchema,
  kernelCatalogSchema,
  type TarballKernelEntry,
} from './schema.js';
