import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';

/**
 * Where a VM's workspace came from, kept in the VM's directory (gone with it): the host repository export
 * reads the base's objects from, so only what changed has to leave the guest. Written by the host at
 * copy-in, never taken from the guest.
 */
export const workspaceRecordSchema = z.object({
  /** The host repository's top (absolute, symlinks resolved), a git main checkout. */
  source: z.string().startsWith('/'),
  /** The commit the guest's workspace started from, when there was one. */
  baseCommit: z.string().optional(),
});
export type WorkspaceRecord = z.infer<typeof workspaceRecordSchema>;

export function workspaceRecordPath(vmDir: string): string {
  return join(vmDir, 'workspace.json');
}

export async function writeWorkspaceRecord(vmDir: string, record: WorkspaceRecord): Promise<void> {
  await writeFileAtomic(workspaceRecordPath(vmDir), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

/** The record, or undefined when there is none (a plain directory, a VM made before records, a fork). */
export async function readWorkspaceRecord(vmDir: string): Promise<WorkspaceRecord | undefined> {
  const text = await readFile(workspaceRecordPath(vmDir), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return workspaceRecordSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** A workspace that is not a git repository has nothing for export to read on the host. */
export async function removeWorkspaceRecord(vmDir: string): Promise<void> {
  await rm(workspaceRecordPath(vmDir), { force: true });
}
