import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../../../host/index.js';
import { BangerError, badRequest } from '../../../model/errors.js';
import type { SnapshotFile } from '../../../model/snapshot.js';
import type { VM } from '../../../model/vm.js';
import { vmPaths } from '../vms/index.js';

/** sha256 (hex) of a file's content, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Flushes a file's content to disk before the rename that publishes it. */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The files of a snapshot as recorded: size, digest, role. */
export async function describeFile(
  dir: string,
  name: string,
  role: SnapshotFile['role'],
  hash: (path: string) => Promise<string> = sha256File,
): Promise<SnapshotFile> {
  const path = join(dir, name);
  await fsyncFile(path);
  return { name, role, sizeBytes: (await stat(path)).size, sha256: await hash(path) };
}

/**
 * The VM's disk files to freeze: its copy-on-write root file and its work disk. Only file-backed roots
 * (copy, reflink, qcow2) can be copied while the VM is paused; a dm-snapshot root is a kernel device
 * over the image, refused with what to do.
 */
export function diskFiles(vmsDir: string, vm: VM): { root: string; work: string } {
  const paths = vmPaths(vmsDir, vm.id);
  if (vm.runtime.forkOf)
    throw badRequest(
      `VM ${vm.name} is a fork of snapshot ${vm.runtime.forkOf.snapshotName}; snapshots of forks are not built yet`,
      {
        hint: `fork snapshot ${vm.runtime.forkOf.snapshotName} again instead`,
      },
    );
  if (vm.runtime.identities.some((i) => i.kind === 'dm' || i.kind === 'loop'))
    throw badRequest(`VM ${vm.name}'s root disk is a dm-snapshot device, which a snapshot cannot copy yet`, {
      hint: 'use cow_strategy = "qcow2", "reflink" or "copy" for VMs you want to snapshot',
    });
  const roots = vm.runtime.identities.flatMap((i) =>
    i.kind === 'file' &&
    i.path.startsWith(`${paths.dir}/`) &&
    !i.path.startsWith(`${paths.run}/`) &&
    i.path !== paths.workDisk
      ? [i.path]
      : [],
  );
  if (roots.length !== 1 || !roots[0])
    throw new BangerError('operation_failed', `VM ${vm.name} has no single root disk file recorded`);
  return { root: roots[0], work: paths.workDisk };
}

/**
 * Copies a disk of the paused VM into the snapshot: sparse (holes stay holes), reflinked where the
 * filesystem can. A qcow2 overlay keeps its backing-file reference to the image.
 */
export async function copyDisk(runner: Runner, from: string, to: string): Promise<void> {
  await runner.run(['cp', '--sparse=always', '--reflink=auto', '--', from, to]);
}
