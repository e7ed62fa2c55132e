import type { TeardownIdentity } from '../../../model/identity.js';
import type { PrivOps } from '../../priv/types.js';
import type { Runner } from '../../runner.js';

/** The copy-on-write strategies, named as config `cow_strategy` names them. */
export const COW_STRATEGIES = ['dm-snapshot', 'reflink', 'qcow2', 'copy'] as const;
export type CowStrategyName = (typeof COW_STRATEGIES)[number];

/** What the VMM opens: a raw block device or file, or a qcow2 overlay (QEMU only). */
export type DiskFormat = 'raw' | 'qcow2';

export interface CowInput {
  /** The image's read-only root filesystem. */
  imagePath: string;
  /** The VM's own directory (under the state dir); the strategy's files go here. */
  vmDir: string;
  /** VM id: names the device-mapper device. */
  vmId: string;
  /** Size of the sparse COW exception store (dm-snapshot only; config `system_overlay_size`). */
  overlayBytes: number;
}

/** A per-VM root disk. `identities` are in creation order; teardown undoes them in reverse. */
export interface CowDisk {
  strategy: CowStrategyName;
  path: string;
  format: DiskFormat;
  identities: TeardownIdentity[];
}

export interface CowDeps {
  runner: Runner;
  priv: PrivOps;
  stateDir: string;
}

/**
 * One way to make a per-VM root disk. `plan` is pure and lists every identity `create` may produce, so
 * the caller records them all before any side effect; `create` returns the same list with what became
 * known on the way (loop device numbers).
 */
export interface CowStrategy {
  name: CowStrategyName;
  plan(input: CowInput): CowDisk;
  create(deps: CowDeps, input: CowInput): Promise<CowDisk>;
}
