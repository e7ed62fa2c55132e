import { z } from 'zod';
import { teardownIdentitySchema } from './identity.js';

/**
 * One union for a VM's state, never a set of booleans that must agree. `paused`: the VMM runs with the
 * guest's vCPUs frozen (`vm pause`); it holds everything a running VM holds. `deleting`: `vm delete`
 * answered (the VMM is gone) and the daemon is tearing the rest down; the row, and so the name, goes when
 * that is done (a daemon killed meanwhile finishes it at its next start).
 */
export const vmStateSchema = z.enum(['created', 'running', 'paused', 'stopped', 'error', 'deleting']);

export const vmSpecSchema = z.object({
  vcpu: z.number().int().min(1),
  memoryMib: z.number().int().min(128),
  diskSizeBytes: z.number().int().positive(),
  systemOverlaySizeBytes: z.number().int().positive(),
  nat: z.boolean(),
});

/**
 * Durable runtime facts. `identities` mirrors handles.json: every host side effect's teardown identity,
 * written before the effect and cleared after its teardown (see ARCHITECTURE.md). The store parses each
 * one on its own (parseIdentities) before the row reaches this schema, so a damaged one is refused alone.
 */
export const vmRuntimeSchema = z.object({
  guestIp: z.string().optional(),
  vmDir: z.string().optional(),
  logPath: z.string().optional(),
  identities: z.array(teardownIdentitySchema).default([]),
  lastError: z.string().optional(),
  /** Why banger itself stopped the VM when no user asked (the idle rule); cleared at the next start. */
  stopReason: z.string().optional(),
  /**
   * A VM forked from a snapshot: its disks are qcow2 overlays whose read-only backing files are the
   * snapshot's (so `snapshot rm` is refused while it exists); it cold-boots on them after a stop.
   */
  forkOf: z.object({ snapshotId: z.string(), snapshotName: z.string() }).optional(),
  /**
   * Set while a start restores a snapshot, until the guest has taken its own identity: a daemon killed in
   * between leaves a guest with the snapshot's address and hostname, which reconcile must not adopt (it
   * deletes the VM, as a failed restore is deleted).
   */
  restoring: z.boolean().optional(),
  /** What the running VMM booted (recorded at each start): a snapshot records it, a restore must match it. */
  boot: z.object({ kernelPath: z.string(), machine: z.enum(['microvm', 'q35']) }).optional(),
});

/**
 * Who made a VM, when a program did rather than the user: a short tag such as `mcp`. `banger mcp serve`
 * sets it on every VM it creates and, unless told `--all-vms`, touches only VMs that carry its tag.
 */
export const vmCreatedBySchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, 'a lowercase tag such as "mcp" (letters, digits, -; at most 32)');

export const vmSchema = z.object({
  id: z.string(),
  name: z.string(),
  imageId: z.string(),
  createdBy: vmCreatedBySchema.optional(),
  state: vmStateSchema,
  spec: vmSpecSchema,
  runtime: vmRuntimeSchema,
  createdAt: z.string(),
  updatedAt: z.string(),
  lastTouchedAt: z.string(),
});

export type VMState = z.infer<typeof vmStateSchema>;

/** Running or paused: the VMM process is up and holds the VM's runtime resources (tap, IP, process). */
export function vmmUp(state: VMState): boolean {
  return state === 'running' || state === 'paused';
}
export type VMSpec = z.infer<typeof vmSpecSchema>;
export type VMRuntime = z.infer<typeof vmRuntimeSchema>;
export type VM = z.infer<typeof vmSchema>;
