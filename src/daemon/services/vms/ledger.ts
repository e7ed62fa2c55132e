import { dirname } from 'node:path';
import type { TeardownIdentity } from '../../../model/identity.js';
import type { VmRepository } from '../../../store/index.js';
import { isRuntimeIdentity } from './live.js';
import { type VmHandlesFile, writeHandles } from './run-dir.js';

const key = (id: TeardownIdentity) => JSON.stringify(id);

/**
 * The durable record of one VM's host side effects. Each change is written to handles.json (atomically)
 * and mirrored onto the VM's runtime in the store before the caller goes on, so the effect it is about
 * to make can be undone after a crash from either copy alone.
 */
export class IdentityLedger {
  private state: VmHandlesFile;
  private readonly vms: VmRepository;
  private readonly handlesPath: string;

  constructor(vms: VmRepository, handlesPath: string, initial: VmHandlesFile) {
    this.vms = vms;
    this.handlesPath = handlesPath;
    this.state = { ...initial, identities: [...initial.identities] };
  }

  get identities(): readonly TeardownIdentity[] {
    return this.state.identities;
  }

  /** What stop undoes (see isRuntimeIdentity). */
  runtimeIdentities(): TeardownIdentity[] {
    const vmDir = dirname(this.handlesPath);
    return this.state.identities.filter((id) => isRuntimeIdentity(id, vmDir));
  }

  get handles(): VmHandlesFile {
    return this.state;
  }

  /** Appends identities not yet recorded; call before the side effect they name. */
  async record(ids: readonly TeardownIdentity[]): Promise<void> {
    const known = new Set(this.state.identities.map(key));
    const fresh = ids.filter((id) => !known.has(key(id)));
    if (fresh.length === 0) return;
    await this.write({ ...this.state, identities: [...this.state.identities, ...fresh] });
  }

  /**
   * Swaps planned identities for what creation returned (a loop device number that is now known), keeping
   * the creation order.
   */
  async replace(planned: readonly TeardownIdentity[], actual: readonly TeardownIdentity[]): Promise<void> {
    // Most creations return what was planned (a file's path): nothing new to make durable, so no write.
    const plannedKeys = planned.map(key);
    if (plannedKeys.length === actual.length && actual.every((id, i) => key(id) === plannedKeys[i])) return;
    const drop = new Set(plannedKeys);
    const kept = this.state.identities.filter((id) => !drop.has(key(id)));
    const known = new Set(kept.map(key));
    await this.write({ ...this.state, identities: [...kept, ...actual.filter((id) => !known.has(key(id)))] });
  }

  /** Forgets identities whose teardown was confirmed. */
  async forget(ids: readonly TeardownIdentity[]): Promise<void> {
    const drop = new Set(ids.map(key));
    await this.write({ ...this.state, identities: this.state.identities.filter((id) => !drop.has(key(id))) });
  }

  async setVmm(vmm: VmHandlesFile['vmm'], extra: Pick<VmHandlesFile, 'agentEndpoint' | 'consoleLogPath'>) {
    await this.write({ ...this.state, vmm, ...extra });
  }

  async clearVmm(): Promise<void> {
    const { vmm: _vmm, agentEndpoint: _endpoint, ...rest } = this.state;
    await this.write(rest);
  }

  private async write(next: VmHandlesFile): Promise<void> {
    await writeHandles(this.handlesPath, next);
    this.state = next;
    const vm = this.vms.findById(next.vmId);
    if (vm) this.vms.update(vm.id, vm.state, { ...vm.runtime, identities: next.identities });
  }
}
