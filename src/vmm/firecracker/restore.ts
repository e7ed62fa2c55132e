import { badRequest } from '../../model/errors.js';
import type { VmmLaunchSpec } from '../types.js';
import type { ApiCall, firecrackerRunFiles } from './config.js';

/** The calls that restore a snapshot into a fresh Firecracker, in order (after /logger and /metrics). */
export interface RestoreCalls {
  /** PUT /snapshot/load: paused, so the drives can be pointed at the fork's files before a vCPU runs. */
  load: ApiCall;
  /** PATCH /drives/{id}: the fork's own disk files, in place of the snapshot's VM's. */
  drives: ApiCall[];
}

/**
 * What a fork tells Firecracker. The snapshot's `vmstate` names its VM's tap, vsock socket and disk files;
 * the fork has its own of each:
 * - the tap through `network_overrides` (same iface id `eth0`, the fork's tap as host_dev_name);
 * - the vsock socket through `vsock_override` (the fork's run dir), where its agent is reached;
 * - the disks: the state file names them `disk0`, `disk1`, … (links in the run dir, Firecracker's working
 *   directory: drive-links.ts), so the load opens the fork's own. `PATCH /drives/{id}` then names the fork's
 *   files outright, before any vCPU runs (the load leaves the VM paused): a snapshot saved with absolute
 *   drive paths (before the links) must never run a fork on its source VM's disks.
 * Memory comes from the snapshot's file (`mem_backend` File): Firecracker maps it MAP_PRIVATE, so forks
 * of one snapshot share its unchanged pages in the host's page cache and copy only what they write.
 * Drive ids are the boot's (firecrackerConfigCalls): `rootfs`, then `disk1`, ….
 */
export function firecrackerRestoreCalls(
  spec: VmmLaunchSpec,
  files: ReturnType<typeof firecrackerRunFiles>,
): RestoreCalls {
  const incoming = spec.incoming;
  if (!incoming?.statePath)
    throw badRequest("a Firecracker restore needs the snapshot's device-state file (vmstate)");
  const disks = [spec.rootDisk, ...(spec.extraDisks ?? [])];
  for (const d of disks)
    if (d.format !== 'raw') throw badRequest(`Firecracker only takes raw disks, not ${d.format}: ${d.path}`);
  return {
    load: {
      path: '/snapshot/load',
      body: {
        snapshot_path: incoming.statePath,
        mem_backend: { backend_type: 'File', backend_path: incoming.memoryPath },
        resume_vm: false,
        ...(spec.net ? { network_overrides: [{ iface_id: 'eth0', host_dev_name: spec.net.tap }] } : {}),
        vsock_override: { uds_path: files.vsockSocket },
      },
    },
    drives: disks.map((d, i) => {
      const id = i === 0 ? 'rootfs' : `disk${i}`;
      return { path: `/drives/${id}`, body: { drive_id: id, path_on_host: d.path } };
    }),
  };
}

/** Firecracker's snapshot format is tied to its version: another one is refused before the load. */
export function checkRestoreVersion(running: string, saved: string): void {
  if (running !== saved)
    throw badRequest(
      `the snapshot was saved by Firecracker ${saved} and this host runs Firecracker ${running}`,
      { hint: 'boot a VM cold and take the snapshot again' },
    );
}
