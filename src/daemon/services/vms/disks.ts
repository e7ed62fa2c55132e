import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createWorkDisk, planWorkDisk } from '../../../host/index.js';
import { toBangerError } from '../../../model/errors.js';
import type { Image } from '../../../model/image.js';
import type { VM } from '../../../model/vm.js';
import { extractDirectory } from '../../../rootfs/index.js';
import { WORK_DISK_MOUNT, WORK_DISK_SEEDED_MARKER } from './guest-setup.js';
import type { IdentityLedger } from './ledger.js';
import { vmPaths } from './run-dir.js';
import type { VmServiceDeps } from './types.js';

/**
 * The VM's copy-on-write root disk and its work disk, made once (at create, or at the first start) and
 * kept across stops: they hold the guest's changes. Each file's identity is recorded before it is made.
 */
export async function ensureVmDisks(
  deps: VmServiceDeps,
  vm: VM,
  image: Image,
  ledger: IdentityLedger,
  vmmKind: 'qemu' | 'firecracker',
): Promise<{ path: string; format: 'raw' | 'qcow2' }> {
  const paths = vmPaths(deps.vmsDir, vm.id);
  const checkpoint = (name: string) => deps.checkpoint?.(name, vm.id) ?? Promise.resolve();
  const cowInput = {
    imagePath: image.artifacts.rootfsPath,
    vmDir: paths.dir,
    vmId: vm.id,
    overlayBytes: vm.spec.systemOverlaySizeBytes,
  };
  const planned = await deps.disks.planRootDisk(vmmKind, cowInput);
  let root = planned;
  // dm-snapshot's devices are runtime (rebuilt each start over the kept COW file); file strategies are not.
  const reuse = planned.strategy !== 'dm-snapshot' && existsSync(planned.path);
  if (!reuse) {
    await ledger.record(planned.identities);
    root = await deps.disks.createRootDisk(vmmKind, cowInput);
    await ledger.replace(planned.identities, root.identities);
  }
  await checkpoint('root-disk');
  if (!existsSync(paths.workDisk)) {
    await ledger.record([planWorkDisk(paths.workDisk)]);
    await createSeededWorkDisk(deps, image, paths, vm.spec.diskSizeBytes);
  }
  await checkpoint('work-disk');
  return { path: root.path, format: root.format };
}

/**
 * The work disk, made with the image's /root in it (dotfiles) and the marker that says so, so the guest
 * only has to mount it. When /root cannot be read out of the image the disk is made empty and unmarked,
 * and the guest seeds it at its first mount instead.
 */
async function createSeededWorkDisk(
  deps: VmServiceDeps,
  image: Image,
  paths: { dir: string; workDisk: string },
  sizeBytes: number,
): Promise<void> {
  const tmp = await mkdtemp(join(paths.dir, 'work-seed-'));
  try {
    let seed: string | undefined;
    try {
      // The disk could not hold more than its size, so neither may the copy.
      seed = await extractDirectory(image.artifacts.rootfsPath, WORK_DISK_MOUNT, tmp, {
        maxBytes: sizeBytes,
      });
      if (!seed) {
        seed = join(tmp, 'root');
        await mkdir(seed, { mode: 0o700 });
      }
      await writeFile(join(seed, WORK_DISK_SEEDED_MARKER), '');
    } catch (err) {
      deps.log.warn(
        { err: toBangerError(err).message },
        "the image's /root could not be read; the guest seeds it",
      );
      seed = undefined;
    }
    await createWorkDisk(deps.runner, { path: paths.workDisk, sizeBytes, seedDir: seed });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
