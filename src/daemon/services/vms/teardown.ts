import { teardownAll } from '../../../host/index.js';
import type { TeardownIdentity } from '../../../model/identity.js';
import type { VM } from '../../../model/vm.js';
import { vmPaths } from './run-dir.js';
import type { VmServiceDeps } from './types.js';

type TapId = Extract<TeardownIdentity, { kind: 'tap' }>;

/**
 * Undoes a VM's identities (reverse creation order, past failures). Taps go back to the pool rather than
 * being deleted, so the pool's idea of which taps are leased stays true; everything else is plain
 * teardown, with the VM's own directory as the only tree its file and pidfile identities may name.
 */
export async function undo(
  deps: VmServiceDeps,
  vmId: string,
  ids: readonly TeardownIdentity[],
): Promise<void> {
  const taps = ids.filter((id): id is TapId => id.kind === 'tap');
  const rest = ids.filter((id) => id.kind !== 'tap');
  const errors: unknown[] = [];
  try {
    const vmDir = vmPaths(deps.vmsDir, vmId).dir;
    await teardownAll(
      {
        priv: deps.priv,
        vmDir,
        ips: deps.network.ips,
        cids: deps.network.cids,
        log: deps.log.child({ vm: vmId }),
      },
      rest,
    );
  } catch (err) {
    errors.push(err);
  }
  for (const tap of taps) {
    try {
      await deps.network.taps.release(tap);
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/** The taps the store's VMs hold: leased to them until reconcile has looked at them, never idle in the pool. */
export function tapsHeldBy(vms: readonly VM[]): string[] {
  return vms.flatMap((vm) => vm.runtime.identities.flatMap((i) => (i.kind === 'tap' ? [i.name] : [])));
}
