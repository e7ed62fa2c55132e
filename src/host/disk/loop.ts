import type { TeardownIdentity } from '../../model/identity.js';
import type { PrivOps } from '../priv/types.js';

export type LoopIdentity = Extract<TeardownIdentity, { kind: 'loop' }>;

/**
 * The identity to record before attaching: the device is not known yet, so teardown will find it by its
 * backing file. Use a per-VM backing path, or teardown would also detach other VMs' loops over that file.
 */
export function planLoop(backingFile: string): LoopIdentity {
  return { kind: 'loop', device: '', backingFile };
}

/** Attaches a loop device and returns the full identity (record it again: now with the device). */
export async function attachLoop(priv: PrivOps, file: string, readOnly: boolean): Promise<LoopIdentity> {
  const { device, backingFile } = await priv.attachLoop({ file, readOnly });
  return { kind: 'loop', device, backingFile };
}

/** Detaches by identity; a reused device number (other backing file) or a missing device is left alone. */
export async function detachLoop(priv: PrivOps, identity: LoopIdentity): Promise<void> {
  await priv.detachLoop({ device: identity.device, backingFile: identity.backingFile });
}
