import type { Config } from '../../config/schema.js';
import type { PrivOps } from '../priv/types.js';
import type { Runner } from '../runner.js';
import { type CowProbe, chooseCowStrategy, probeCowStrategies } from './cow/probe.js';
import type { CowDisk, CowInput, CowStrategy } from './cow/types.js';

export interface HostDisksOptions {
  runner: Runner;
  priv: PrivOps;
  stateDir: string;
  /** Where VM disks live (the reflink probe is per filesystem). */
  vmsDir: string;
  config: Pick<Config, 'cow_strategy'>;
}

/** The disk pieces a VM service needs: which COW strategy this host uses and why the others are out. */
export interface HostDisks {
  /** Probes once and caches; `doctor` shows the result. */
  probe(): Promise<CowProbe[]>;
  /** The strategy for a VM run by `vmm`, from config and the probe. */
  strategyFor(vmm: 'firecracker' | 'qemu'): Promise<CowStrategy>;
  /** Every identity `createRootDisk` may produce; record them before calling it. */
  planRootDisk(vmm: 'firecracker' | 'qemu', input: CowInput): Promise<CowDisk>;
  /** The VM's copy-on-write root disk: its path, format (raw|qcow2) for the VMM, and identities. */
  createRootDisk(vmm: 'firecracker' | 'qemu', input: CowInput): Promise<CowDisk>;
}

export function createHostDisks({ runner, priv, stateDir, vmsDir, config }: HostDisksOptions): HostDisks {
  let probes: Promise<CowProbe[]> | undefined;
  const probe = () => {
    probes ??= probeCowStrategies({ runner, dir: vmsDir });
    return probes;
  };
  const strategyFor = async (vmm: 'firecracker' | 'qemu') =>
    chooseCowStrategy(config.cow_strategy, await probe(), vmm);
  return {
    probe,
    strategyFor,
    planRootDisk: async (vmm, input) => (await strategyFor(vmm)).plan(input),
    createRootDisk: async (vmm, input) => (await strategyFor(vmm)).create({ runner, priv, stateDir }, input),
  };
}
