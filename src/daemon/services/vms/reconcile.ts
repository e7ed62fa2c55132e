import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readLink } from '../../../host/index.js';
import { toBangerError } from '../../../model/errors.js';
import { type VM, vmmUp } from '../../../model/vm.js';
import { IdentityLedger } from './ledger.js';
import type { LiveVm } from './live.js';
import type { VmmInstancePort } from './ports.js';
import { readHandles, vmPaths } from './run-dir.js';
import { destroyVm, ledgerFor, releaseLeases, releaseRuntime } from './stop.js';
import { undo } from './teardown.js';
import type { VmServiceDeps } from './types.js';

export interface ReconcileReport {
  adopted: string[];
  /** VMs whose runtime leftovers were torn down. */
  cleaned: string[];
  /** Deletes interrupted by a crash, finished now. */
  finishedDeletes: string[];
  releasedLeases: string[];
  errors: { vm: string; message: string }[];
}

/**
 * Runs once at daemon start, before any request: makes the host and the store agree again. A VM the
 * store thinks is running is adopted when its VMM is alive and ours (same pid and start time); anything
 * else a VM still holds at runtime is torn down from handles.json, or from the store mirror when the
 * file is missing or corrupt. Half-finished deletes are finished, orphaned IP leases released.
 */
export async function reconcileVms(
  deps: VmServiceDeps,
  adopt: (vm: VM, instance: VmmInstancePort, ledger: IdentityLedger) => LiveVm,
): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    adopted: [],
    cleaned: [],
    finishedDeletes: [],
    releasedLeases: [],
    errors: [],
  };
  const vms = deps.store.vms.list();
  for (const vm of vms) {
    try {
      await reconcileOne(deps, vm, adopt, report);
    } catch (err) {
      report.errors.push({ vm: vm.name, message: toBangerError(err).message });
    }
  }
  await finishOrphanDirs(deps, new Set(vms.map((v) => v.id)), report);
  report.releasedLeases = await releaseLeases(deps, (owner) => !deps.store.vms.findById(owner));
  await (async () => {
    // Refill the pool only where banger already has its bridge: a daemon that never ran a VM (or only
    // answers `vm list`) leaves the host's network alone. The first start makes the bridge.
    if (!(await readLink(deps.runner, deps.config.bridge_name, deps.network.netns))) return;
    await deps.network.ensureBridge();
    await deps.network.taps.fill();
  })().catch((err) => {
    report.errors.push({ vm: '-', message: `tap pool: ${toBangerError(err).message}` });
  });
  return report;
}

async function reconcileOne(
  deps: VmServiceDeps,
  vm: VM,
  adopt: (vm: VM, instance: VmmInstancePort, ledger: IdentityLedger) => LiveVm,
  report: ReconcileReport,
): Promise<void> {
  const paths = vmPaths(deps.vmsDir, vm.id);
  if (!existsSync(paths.dir) && !vmmUp(vm.state)) {
    // A create that never made its directory, or a delete cut short after removing it.
    await undo(deps, vm.id, vm.runtime.identities);
    deps.store.vms.delete(vm.id);
    report.finishedDeletes.push(vm.name);
    return;
  }
  // The marker is written before the `deleting` state; either says a delete was answered for or begun.
  if (existsSync(paths.deleting) || vm.state === 'deleting') {
    await destroyVm(deps, vm);
    report.finishedDeletes.push(vm.name);
    return;
  }
  if (vm.runtime.restoring) {
    // A restore cut short (daemon killed before the guest took its identity): its guest, if it runs, still
    // has the snapshot's address and hostname. A failed restore is deleted; so is this one, VMM included.
    await destroyVm(deps, vm);
    deps.log.info({ vm: vm.name }, 'deleted a VM whose restore was cut short');
    report.finishedDeletes.push(vm.name);
    return;
  }
  const handles = await readHandles(paths.handles, deps.log);
  if (vmmUp(vm.state) && handles?.vmm) {
    const vmm = await deps.vmm();
    const instance = await vmm.adopt(handles.vmm).catch(() => null);
    if (instance) {
      const ledger = new IdentityLedger(deps.store.vms, paths.handles, handles);
      adopt(vm, instance, ledger);
      // The VMM's word on its vCPUs wins over the store's: a daemon killed between a pause (or resume) and
      // its store write must not leave a paused guest listed as running, where every exec would hang.
      const paused = await instance.paused().catch(() => vm.state === 'paused');
      const state = paused ? 'paused' : 'running';
      if (state !== vm.state) deps.store.vms.update(vm.id, state, vm.runtime);
      report.adopted.push(vm.name);
      return;
    }
  }
  const ledger = await ledgerFor(deps, vm);
  const leftovers = ledger.runtimeIdentities();
  if (leftovers.length === 0 && !vmmUp(vm.state) && !handles?.vmm) return;
  const wasRunning = vmmUp(vm.state);
  await releaseRuntime(
    deps,
    vm,
    ledger,
    vm.state === 'error' ? 'error' : 'stopped',
    wasRunning ? 'the VM was not running when the daemon started' : vm.runtime.lastError,
  );
  report.cleaned.push(vm.name);
}

/** VM directories with no store row: tear down what their handles name, then remove them. */
async function finishOrphanDirs(deps: VmServiceDeps, known: Set<string>, report: ReconcileReport) {
  let entries: string[];
  try {
    entries = await readdir(deps.vmsDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (known.has(entry) || !/^[0-9a-f]{16}$/.test(entry)) continue;
    const paths = vmPaths(deps.vmsDir, entry);
    try {
      const handles = await readHandles(paths.handles, deps.log);
      if (handles) await undo(deps, entry, handles.identities);
      await rm(join(deps.vmsDir, entry), { recursive: true, force: true });
      report.finishedDeletes.push(entry);
    } catch (err) {
      report.errors.push({ vm: entry, message: toBangerError(err).message });
    }
  }
}
