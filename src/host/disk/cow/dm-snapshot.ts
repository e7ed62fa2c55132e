import { link, open, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { TeardownIdentity } from '../../../model/identity.js';
import { teardownAll } from '../../teardown.js';
import { attachLoop, planLoop } from '../loop.js';
import type { CowDeps, CowDisk, CowInput, CowStrategy } from './types.js';

/** The device-mapper name of a VM's root snapshot: deterministic from the VM id, so reconcile can find it. */
export function dmSnapshotName(vmId: string): string {
  return `banger-${vmId.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 100);
}

/**
 * The original's strategy: a read-only loop over the image, a loop over a sparse per-VM COW file, and a
 * persistent dm snapshot over the two. The image loop goes through a per-VM hard link, so each VM's loop
 * has its own backing path and teardown by backing file never touches another VM's loop.
 */
export const dmSnapshotStrategy: CowStrategy = {
  name: 'dm-snapshot',
  plan: planDmSnapshot,
  async create(deps: CowDeps, input: CowInput): Promise<CowDisk> {
    const planned = planDmSnapshot(input);
    const [baseId, cowId, , , dmId] = planned.identities as [
      { kind: 'file'; path: string },
      { kind: 'file'; path: string },
      TeardownIdentity,
      TeardownIdentity,
      { kind: 'dm'; name: string },
    ];
    // Leftovers of a crashed attempt (a loop over the old link, a stale dm device) would make a second
    // loop or a name clash; the plan names all of them, so clear them first.
    await teardownAll({ priv: deps.priv, vmDir: input.vmDir }, planned.identities);
    const done: TeardownIdentity[] = [];
    try {
      await linkImage(input.imagePath, baseId.path);
      done.push(baseId);
      const fh = await open(cowId.path, 'w', 0o600);
      done.push(cowId);
      await fh.truncate(input.overlayBytes);
      await fh.close();
      const base = await attachLoop(deps.priv, baseId.path, true);
      done.push(base);
      const cow = await attachLoop(deps.priv, cowId.path, false);
      done.push(cow);
      const sectors = Math.floor((await stat(input.imagePath)).size / 512);
      done.push(dmId);
      const path = await deps.priv.createDmSnapshot({
        name: dmId.name,
        origin: base.device,
        cow: cow.device,
        sectors,
      });
      return { ...planned, path, identities: [baseId, cowId, base, cow, dmId] };
    } catch (err) {
      // Roll back what exists; the caller's recorded plan covers anything a crash here would leave.
      await teardownAll({ priv: deps.priv, vmDir: input.vmDir }, done).catch(() => {});
      throw err;
    }
  },
};

function planDmSnapshot(input: CowInput): CowDisk {
  const baseLink = join(input.vmDir, 'rootfs-base.ext4');
  const cowFile = join(input.vmDir, 'rootfs.cow');
  const name = dmSnapshotName(input.vmId);
  return {
    strategy: 'dm-snapshot',
    path: `/dev/mapper/${name}`,
    format: 'raw',
    identities: [
      { kind: 'file', path: baseLink },
      { kind: 'file', path: cowFile },
      planLoop(baseLink),
      planLoop(cowFile),
      { kind: 'dm', name },
    ],
  };
}

/**
 * A hard link gives this VM's loop its own backing path. Across filesystems (image store elsewhere) a
 * symlink is the fallback: losetup resolves it to the shared image path, so such a loop must be torn down
 * by its recorded device, which `create` returns.
 */
async function linkImage(imagePath: string, dest: string): Promise<void> {
  try {
    await link(imagePath, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM') throw err;
    await symlink(imagePath, dest);
  }
}
