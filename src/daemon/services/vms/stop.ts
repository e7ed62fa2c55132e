import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { toBangerError } from '../../../model/errors.js';
import type { VM } from '../../../model/vm.js';
import { IdentityLedger } from './ledger.js';
import type { LiveVm } from './live.js';
import { readHandles, vmPaths } from './run-dir.js';
import { undo } from './teardown.js';
import type { VmServiceDeps } from './types.js';

const DEFAULT_STOP_TIMEOUT_MS = 30_000;

/**
 * Stops a running VM: the agent powers the guest off (it syncs first), the VMM is killed when the guest
 * does not go within the timeout, then every runtime identity is undone and forgotten.
 */
export async function stopLive(
  deps: VmServiceDeps,
  vm: VM,
  live: LiveVm,
  force: boolean,
  signal?: NodeJS.Signals,
): Promise<void> {
  live.stopping = true;
  const timeoutMs = deps.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  try {
    if (force) await live.instance.kill(signal);
    else {
      const agent = live.agent;
      await live.instance.stop({
        timeoutMs,
        // The guest syncs and powers off; it may already be going down, which is fine.
        guestShutdown: agent ? () => agent.shutdown().catch(() => {}) : undefined,
      });
    }
  } catch (err) {
    deps.log.warn({ vm: vm.id, err: toBangerError(err).message }, 'graceful stop failed; killing');
    await live.instance.kill();
  }
  await Promise.resolve(live.agent?.close()).catch(() => {});
  await deps.checkpoint?.('stopped-vmm', vm.id);
  await releaseRuntime(deps, vm, live.ledger);
}

/** Undoes the runtime identities in the ledger, marks the VM stopped and clears its recovery state. */
export async function releaseRuntime(
  deps: VmServiceDeps,
  vm: VM,
  ledger: IdentityLedger,
  state: 'stopped' | 'error' = 'stopped',
  lastError?: string,
): Promise<void> {
  const runtime = ledger.runtimeIdentities();
  await undo(deps, vm.id, runtime);
  await ledger.forget(runtime);
  await ledger.clearVmm();
  const current = deps.store.vms.findById(vm.id);
  if (current) {
    deps.store.vms.update(vm.id, state, { ...current.runtime, lastError });
  }
}

/**
 * Everything a VM owns, from its record alone: the handles file, else the store mirror (a VMM spawned
 * just before a crash is among them: its pidfile identity was recorded before the spawn). Then the
 * directory and the row. Safe to repeat.
 */
export async function destroyVm(deps: VmServiceDeps, vm: VM): Promise<void> {
  const paths = vmPaths(deps.vmsDir, vm.id);
  await markDeleting(deps, vm);
  const ledger = await ledgerFor(deps, vm);
  await undo(deps, vm.id, ledger.identities);
  await ledger.forget(ledger.identities);
  await deps.checkpoint?.('destroyed-identities', vm.id);
  // Leases are owned by VM id: release them even when the identity was never recorded (crash window).
  await releaseLeases(deps, (owner) => owner === vm.id);
  await rm(paths.dir, { recursive: true, force: true });
  deps.store.vms.delete(vm.id);
}

/** The intent, durably: after a crash from here on, reconcile finishes the delete rather than keep half a VM. */
export async function markDeleting(deps: VmServiceDeps, vm: VM): Promise<void> {
  const paths = vmPaths(deps.vmsDir, vm.id);
  if (existsSync(paths.dir)) await writeFile(paths.deleting, `${new Date().toISOString()}\n`);
}

export async function ledgerFor(deps: VmServiceDeps, vm: VM): Promise<IdentityLedger> {
  const paths = vmPaths(deps.vmsDir, vm.id);
  const handles = await readHandles(paths.handles, deps.log);
  return new IdentityLedger(
    deps.store.vms,
    paths.handles,
    handles ?? { vmId: vm.id, identities: vm.runtime.identities },
  );
}

/** Releases every IP and vsock CID lease whose owner matches; returns them as `10.0.0.2`, `cid 3`. */
export async function releaseLeases(
  deps: VmServiceDeps,
  match: (owner: string) => boolean,
): Promise<string[]> {
  const freed: string[] = [];
  for (const [address, owner] of Object.entries(await deps.network.ips.leases())) {
    if (!match(owner)) continue;
    await deps.network.ips.release({ kind: 'ip', address });
    freed.push(address);
  }
  for (const [cid, owner] of Object.entries(await deps.network.cids.leases())) {
    if (!match(owner)) continue;
    await deps.network.cids.release({ kind: 'cid', cid: Number(cid) });
    freed.push(`cid ${cid}`);
  }
  return freed;
}
