import { existsSync } from 'node:fs';
import { rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { badRequest } from '../../model/errors.js';
import type { VmmLaunchSpec } from '../types.js';

/**
 * The names a directly launched Firecracker opens its disks by: `disk0` (root), `disk1`, …, symlinks in
 * the VM's run dir, which is Firecracker's working directory. A snapshot's state file keeps the drive paths
 * it was given and a load reopens them, with no override in the API: relative names resolve in each VM's
 * own run dir, so a fork opens its own disks and never its source VM's (which may be gone). The jailer's
 * chroot does the same with `/disk0`, … (jailedNames).
 */
export function driveLinkNames(spec: Pick<VmmLaunchSpec, 'rootDisk' | 'extraDisks'>): Map<string, string> {
  return new Map([spec.rootDisk, ...(spec.extraDisks ?? [])].map((d, i) => [d.path, `disk${i}`]));
}

/** Makes the links (replacing old ones); a missing disk is refused naming its real path. */
export async function makeDriveLinks(runDir: string, names: Map<string, string>): Promise<string[]> {
  const made: string[] = [];
  for (const [target, name] of names) {
    if (!existsSync(target)) throw badRequest(`disk ${target} does not exist`);
    const link = join(runDir, name);
    await rm(link, { force: true });
    await symlink(target, link);
    made.push(link);
  }
  return made;
}
