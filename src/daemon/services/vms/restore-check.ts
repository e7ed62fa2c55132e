import { existsSync } from 'node:fs';
import { hashFile } from '../../../kernel/index.js';
import { BangerError } from '../../../model/errors.js';
import type { Snapshot } from '../../../model/snapshot.js';
import type { Machine } from '../../../vmm/index.js';

/** What a VM boots on: a restore must find the same kernel file and machine type as the snapshot's VM had. */
export interface BootTarget {
  kernelPath: string;
  machine: Machine;
}

/**
 * Refuses a restore onto another kernel or machine type than the snapshot was taken on (the guest's memory
 * holds the old kernel's text and the old machine's device layout; QEMU checks neither). Runs before any
 * host side effect, so a refusal leaves nothing. A snapshot without the record (made before banger kept it)
 * is refused too: nothing proves it matches.
 */
export async function checkRestoreTarget(
  snapshot: Snapshot,
  target: BootTarget,
  sha256: (path: string) => Promise<string> = async (p) => (await hashFile(p)).sha256,
): Promise<void> {
  const refuse = (what: string) =>
    new BangerError('bad_request', `snapshot ${snapshot.name} cannot be restored here: ${what}`, {
      hint: 'boot a VM cold and take the snapshot again',
    });
  const { kernelSha256, machine } = snapshot.vmm;
  if (!kernelSha256 || !machine) throw refuse('it does not record the kernel and machine type it ran on');
  if (machine !== target.machine)
    throw refuse(`it ran on the ${machine} machine type, this VM would run on ${target.machine}`);
  const now = existsSync(target.kernelPath) ? await sha256(target.kernelPath) : 'missing';
  if (now !== kernelSha256)
    throw refuse(
      `its kernel changed (${target.kernelPath}: sha256 ${now.slice(0, 12)}, recorded ${kernelSha256.slice(0, 12)})`,
    );
}
