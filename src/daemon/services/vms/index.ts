/** The VM service (issue 9): lifecycle over store + host + vmm + guest + kernel + images, and reconcile. */
export type { GuestPort, SpecChange } from './admin.js';
export { type GuestBootConfig, guestCmdline } from './cmdline.js';
export { generateVmName, macFor, newVmId } from './names.js';
export type * from './ports.js';
export type { ReconcileReport } from './reconcile.js';
export { resolveVm } from './resolve.js';
export type { RunRequest, RunResult } from './run.js';
export { readHandles, type VmHandlesFile, vmPaths } from './run-dir.js';
export { createVmService, envRecord, type LiveView, type VmService } from './service.js';
export { tapsHeldBy } from './teardown.js';
export type { CreateVmRequest, OpOptions, RestoreSource, VmServiceDeps } from './types.js';
export { WARM_TEMPLATE_CREATOR } from './warm-key.js';
