import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeQcow2Overlay } from './qcow2-overlay.js';
import type { CowDeps, CowDisk, CowInput, CowStrategy } from './types.js';

/** Strategies whose whole result is one file in the VM dir: reflink clone, qcow2 overlay, sparse copy. */
function fileStrategy(
  name: 'reflink' | 'qcow2' | 'copy',
  fileName: string,
  format: 'raw' | 'qcow2',
  make: (deps: CowDeps, input: CowInput, dest: string) => Promise<unknown>,
): CowStrategy {
  const plan = (input: CowInput): CowDisk => {
    const path = join(input.vmDir, fileName);
    return { strategy: name, path, format, identities: [{ kind: 'file', path }] };
  };
  return {
    name,
    plan,
    async create(deps: CowDeps, input) {
      const disk = plan(input);
      try {
        await make(deps, input, disk.path);
      } catch (err) {
        await rm(disk.path, { force: true });
        throw err;
      }
      return disk;
    },
  };
}

/** FICLONE through `cp --reflink=always`: instant and shares blocks, on btrfs/XFS/bcachefs only. */
export const reflinkStrategy = fileStrategy('reflink', 'rootfs.ext4', 'raw', ({ runner }, input, dest) =>
  runner.run(['cp', '--reflink=always', '--', input.imagePath, dest]),
);

/**
 * A qcow2 overlay backed by the raw image; QEMU only (Firecracker reads raw disks). Written in-process: a
 * few clusters whatever the image's size, where spawning qemu-img cost most of a `vm create`.
 */
export const qcow2Strategy = fileStrategy('qcow2', 'rootfs.qcow2', 'qcow2', (_deps, input, dest) =>
  writeQcow2Overlay(dest, { path: input.imagePath, format: 'raw' }),
);

/** A full copy that keeps holes: always works, costs the image's used bytes per VM. */
export const copyStrategy = fileStrategy('copy', 'rootfs.ext4', 'raw', ({ runner }, input, dest) =>
  runner.run(['cp', '--sparse=always', '--', input.imagePath, dest]),
);
