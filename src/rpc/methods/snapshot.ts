import { z } from 'zod';
import { snapshotSchema } from '../../model/snapshot.js';
import { vmSchema } from '../../model/vm.js';
import { method, noParams } from './define.js';

const ref = z.string().min(1);

/** `snapshot.*`: saved VMs (issue 20). `vm snapshot` is the CLI's name for snapshot.create. */
export const snapshotMethods = {
  'snapshot.create': method(() => ({
    params: z.strictObject({ vm: ref, name: z.string().min(1) }),
    result: z.object({ snapshot: snapshotSchema }),
    summary:
      "Save a running or paused VM's memory, device state and disks (the VM is paused meanwhile and resumed after if it ran).",
  })),
  'snapshot.list': method(() => ({
    params: noParams,
    result: z.object({ snapshots: z.array(snapshotSchema) }),
    summary: 'Every snapshot, with its files, sizes and digests.',
  })),
  'snapshot.show': method(() => ({
    params: z.strictObject({ ref, verify: z.boolean().default(false) }),
    result: z.object({ snapshot: snapshotSchema }),
    summary: "One snapshot by name or id; with verify, every file's sha256 is checked against the record.",
  })),
  'snapshot.fork': method(() => ({
    params: z.strictObject({ ref, name: z.string().min(1).optional() }),
    result: z.object({ vm: vmSchema, snapshot: snapshotSchema }),
    summary:
      'A new VM restored from a snapshot (or from a VM, snapshotted first): own overlays, tap, IP, MAC and hostname (QEMU only).',
  })),
  'snapshot.rm': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ snapshot: snapshotSchema }),
    summary: 'Delete a snapshot and its files (kept while another snapshot shares them).',
  })),
} as const;
