import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { planWorkDisk } from '../../../host/index.js';
import type { Image } from '../../../model/image.js';
import type { VM } from '../../../model/vm.js';
import type { IdentityLedger } from './ledger.js';
import { vmPaths } from './run-dir.js';
import type { VmServiceDeps } from './types.js';
import { takeSpareCopy, workDiskTemplate } from './work-template.js';

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
  const makeWork = !existsSync(paths.workDisk);
  // Both disks' identities in one durable write, before either is made.
  await ledger.record([
    ...(reuse ? [] : planned.identities),
    ...(makeWork ? [planWorkDisk(paths.workDisk)] : []),
  ]);
  if (!reuse) {
    root = await deps.disks.createRootDisk(vmmKind, cowInput);
    await ledger.replace(planned.identities, root.identities);
  }
  await checkpoint('root-disk');
  if (makeWork) await createSeededWorkDisk(deps, image, paths.workDisk, vm.spec.diskSizeBytes);
  await checkpoint('work-disk');
  return { path: root.path, format: root.format };
}

/**
 * The work disk: a sparse copy (a clone where the filesystem can) of the image's template for its size; the
 * template's spare copy when one is ready (renamed into place).
 */
async function createSeededWorkDisk(
  deps: VmServiceDeps,
  image: Image,
  path: string,
  sizeBytes: number,
): Promise<void> {
  const template = await workDiskTemplate(deps, image, sizeBytes);
  if (await takeSpareCopy(deps, template, path)) return;
  try {
    await deps.runner.run(['cp', '--sparse=always', '--reflink=auto', '--', template, path]);
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
}
