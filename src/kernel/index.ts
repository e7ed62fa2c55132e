/**
 * Kernels: the store (`<kernelsDir>/<name>/`), pull from the kernel catalog (tarball bundles or Debian
 * packages through apt), import from a directory or a .deb, banger's initramfs, capabilities, vmlinux.
 * A daemon service wraps `createKernelManager`; the rest is exported for the VMM layer and the tests.
 */
export { type AssembleOptions, assembleKernel, type InitramfsPolicy } from './assemble.js';
export { type BzImageInfo, extractVmlinux, isElf, kernelReleaseOf, parseBzImage } from './bzimage.js';
export {
  detectCapabilities,
  type KernelCapabilities,
  parseKernelConfig,
  type Tristate,
} from './capabilities.js';
export {
  type DebianKernelPackage,
  downloadDebianPackage,
  extractDeb,
  resolveDebianKernelPackage,
} from './debian.js';
export { hashFile } from './hash.js';
export {
  buildInitramfs,
  DEFAULT_BUSYBOX,
  type Initramfs,
  type InitramfsOptions,
  initScriptPath,
  type ModulePlan,
  parseModuleIndex,
  planModules,
  readModuleIndex,
  STAGE1_MODULES,
  writeCpio,
} from './initramfs/index.js';
export { type KernelSourceTree, locateKernel } from './locate.js';
export {
  type AvailableKernel,
  createKernelManager,
  hostKernelArch,
  type KernelImportOptions,
  type KernelManager,
  type KernelManagerOptions,
  type KernelOpOptions,
} from './manager.js';
export { KERNEL_FILES, type KernelManifest, kernelManifestSchema, type LocalKernel } from './manifest.js';
export { type BrokenKernel, createKernelStore, type KernelStore, readKernelDir } from './store.js';
export { type FetchTarballOptions, fetchKernelTarball } from './tarball.js';
