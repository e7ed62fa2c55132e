/** Snapshots (issue 20): save a VM's memory, device state and disks; list, show, verify, remove; reconcile. */

export { createDigestCache, type DigestCache } from './digest-cache.js';
export { createSnapshotService, type SnapshotService, type SnapshotServiceDeps } from './service.js';
export { createWarmTemplates, WARM_TEMPLATE_CREATOR, type WarmTemplates } from './templates.js';
