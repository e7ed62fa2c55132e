/**
 * The rootfs builder: OCI layers (any `LayerSource`) -> a bootable ext4, rootless, with a fidelity report;
 * and guest-asset injection into an ext4 built elsewhere. Pipeline: layers stream through the flattening
 * tree while file data goes straight into src/ext4's writer -> the writer lays out the rest. No staging
 * tree, no mkfs, no debugfs, no e2fsck (the tests run e2fsck -fn on every image). Images built elsewhere are only read with
 * src/ext4's reader (extractDirectory) or written by a confined debugfs (injectAssets). See docs/rootfs.md.
 */
export { injectAssets } from './assets.js';
export { type BuildRootfsOptions, buildRootfs } from './build.js';
export { detectCompression } from './decompress.js';
export { DEFAULT_EXTRACT_LIMITS, type ExtractLimits, extractDirectory } from './extract.js';
export { DEFAULT_LIMITS, limitsFromConfig, MAX_LAYERS } from './limits.js';
export { debugfsQuote, entryComponents } from './paths.js';
export { writeFidelityReport } from './report.js';
export type { Compression, EntryKind, EntryMeta, FidelityReport, RootfsLimits } from './types.js';
