export { dmSnapshotName, dmSnapshotStrategy } from './cow/dm-snapshot.js';
export { copyStrategy, qcow2Strategy, reflinkStrategy } from './cow/file-copy.js';
export {
  type CowProbe,
  chooseCowStrategy,
  cowStrategy,
  type ProbeOptions,
  probeCowStrategies,
} from './cow/probe.js';
export { writeQcow2Overlay } from './cow/qcow2-overlay.js';
export {
  COW_STRATEGIES,
  type CowDeps,
  type CowDisk,
  type CowInput,
  type CowStrategy,
  type CowStrategyName,
  type DiskFormat,
} from './cow/types.js';
export { createHostDisks, type HostDisks, type HostDisksOptions } from './disks.js';
export { type FileIdentity, teardownFile } from './files.js';
export { attachLoop, detachLoop, type LoopIdentity, planLoop } from './loop.js';
export { createWorkDisk, growWorkDisk, MKFS_EXTRA_OPTIONS, planWorkDisk } from './work-disk.js';
