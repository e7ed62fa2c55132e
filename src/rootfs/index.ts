/**
 * The rootfs builder: OCI layers (any `LayerSource`) -> a bootable ext4, rootless, with a fidelity report;
 * and guest-asset injection into an ext4 built elsewhere. Pipeline: flatten -> mkfs.ext4 -d -> one debugfs
 * batch (owners, modes, devices, xattrs, assets) -> e2fsck. Images built elsewhere are only read with
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
