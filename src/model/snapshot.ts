import { z } from 'zod';
import { badRequest } from './errors.js';
import { vmSpecSchema } from './vm.js';

/**
 * What each file of a snapshot holds; the memory file is the one a restore reads first. `ram` (QEMU, a VM
 * with shareable RAM): the guest's RAM as a plain file that restores map copy-on-write, the memory file then
 * holding only the device state.
 */
export const snapshotFileSchema = z.object({
  name: z.string().regex(/^[a-z0-9.-]+$/),
  role: z.enum(['memory', 'vmstate', 'ram', 'root-disk', 'work-disk']),
  sizeBytes: z.number().int().nonnegative(),
  /** sha256 of the content, checked again before any use: a file changed since is refused. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/**
 * A saved VM: memory and device state plus frozen copies of its disks, in a directory named by the digest
 * of its files' digests (content-addressed: two identical snapshots share one directory). `creating` rows
 * exist only while a snapshot is being written; reconcile removes them and their temporary directory.
 */
export const snapshotSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: z.enum(['creating', 'ready']),
  dir: z.string(),
  /** The digest the directory is named by (empty while creating). */
  digest: z.string(),
  source: z.object({ vmId: z.string(), vmName: z.string(), imageId: z.string() }),
  vmm: z.object({
    kind: z.enum(['qemu', 'firecracker']),
    version: z.string(),
    /** What the VM booted: a restore must give the same kernel, machine and size. */
    kernelPath: z.string().optional(),
    /** sha256 of that kernel file; a restore whose kernel differs is refused (absent: made before it was recorded). */
    kernelSha256: z.string().optional(),
    /** The QEMU machine type it ran on; a restore onto another machine is refused. */
    machine: z.enum(['microvm', 'q35']).optional(),
  }),
  /**
   * A warm template of `vm run` (not a user's snapshot): `key` is the digest of what it was booted from
   * (image, kernel, agent binary, VMM, spec); a run whose inputs digest otherwise never uses it.
   */
  template: z.object({ key: z.string().regex(/^[0-9a-f]{64}$/), imageId: z.string() }).optional(),
  spec: vmSpecSchema,
  files: z.array(snapshotFileSchema),
  sizeBytes: z.number().int().nonnegative(),
  createdAt: z.string(),
});

export type SnapshotFile = z.infer<typeof snapshotFileSchema>;
export type Snapshot = z.infer<typeof snapshotSchema>;

/** Snapshot names follow the VM name rules (they name forks' defaults and show in tables). */
export function validateSnapshotName(name: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name))
    throw badRequest(
      `invalid snapshot name ${JSON.stringify(name)}: 1 to 63 lowercase letters, digits and '-', not at either end`,
    );
  return name;
}
