import { BangerError } from '../model/errors.js';
import type { VM } from '../model/vm.js';
import type { RpcClient } from '../rpc/index.js';

/** The `createdBy` tag of every VM `banger mcp serve` creates (a store column: it survives restarts). */
export const MCP_CREATOR = 'mcp';

/** Which VMs the server may touch: its own, or every VM with `--all-vms`. */
export interface VmScope {
  allVms: boolean;
}

export const inScope = (vm: Pick<VM, 'createdBy'>, scope: VmScope): boolean =>
  scope.allVms || vm.createdBy === MCP_CREATOR;

/** Refuses a VM outside the scope, so an agent cannot stop, use or delete a developer's own VMs. */
export function assertInScope(vm: Pick<VM, 'name' | 'createdBy'>, scope: VmScope): void {
  if (inScope(vm, scope)) return;
  throw new BangerError(
    'unauthorized',
    `VM ${JSON.stringify(vm.name)} was not created through banger mcp serve, which leaves other VMs alone`,
    { hint: 'create one with vm_create or vm_run, or start the server with --all-vms' },
  );
}

/**
 * The VM `ref` names, when in scope. Callers act on the returned id, not on `ref` again: a name that
 * changes hands between the check and the act cannot redirect it.
 */
export async function resolveInScope(client: RpcClient, ref: string, scope: VmScope): Promise<VM> {
  const { vm } = await client.call('vm.show', { ref });
  assertInScope(vm, scope);
  return vm;
}
