import type { TeardownIdentity } from '../../../model/identity.js';
import type { IdentityLedger } from './ledger.js';
import type { AgentPort, VmmInstancePort } from './ports.js';

/** A VM whose VMM this daemon started or adopted. */
export interface LiveVm {
  instance: VmmInstancePort;
  ledger: IdentityLedger;
  agent?: AgentPort;
  /** Set while banger itself stops the VM, so the exit watcher leaves the teardown to the stopper. */
  stopping?: boolean;
}

/**
 * Identities that last as long as the VM exists (its disks in its directory, its IP and vsock CID leases) versus those
 * that last while it runs (process, tap, NAT, loops, device-mapper, and the VMM's sockets in the run dir
 * or elsewhere). Stop undoes the second group; delete undoes both.
 */
export function isRuntimeIdentity(id: TeardownIdentity, vmDir: string): boolean {
  if (id.kind === 'ip' || id.kind === 'cid') return false;
  if (id.kind !== 'file') return true;
  const inVmDir = id.path.startsWith(`${vmDir}/`);
  return !inVmDir || id.path.startsWith(`${vmDir}/run/`);
}
