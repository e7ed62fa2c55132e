import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import type { TeardownIdentity } from '../../../model/identity.js';

/** Every file of a VM's directory (`<vmsDir>/<id>/`), named in one place. */
export function vmPaths(vmsDir: string, vmId: string) {
  const dir = join(vmsDir, vmId);
  return {
    dir,
    /** Teardown identities and VMM handles: what reconcile needs after a crash. */
    handles: join(dir, 'handles.json'),
    rootDisk: join(dir, 'root.ext4'),
    workDisk: join(dir, 'work.ext4'),
    /** The VMM's run dir: sockets and the console log. */
    run: join(dir, 'run'),
    /** Present while a delete is under way: reconcile finishes it. */
    deleting: join(dir, 'deleting'),
  };
}

const handlesSchema = z.object({
  vmId: z.string(),
  identities: z.array(z.looseObject({ kind: z.string() })),
  vmm: z.looseObject({ pid: z.number().int(), startTime: z.number() }).optional(),
  agentEndpoint: z.looseObject({ kind: z.string() }).optional(),
  consoleLogPath: z.string().optional(),
});

export interface VmHandlesFile {
  vmId: string;
  identities: TeardownIdentity[];
  vmm?: { pid: number; startTime: number } & Record<string, unknown>;
  agentEndpoint?: Record<string, unknown> & { kind: string };
  consoleLogPath?: string;
}

/** Atomic (tmp + fsync + rename): a crash leaves the old file or the new one, never half of one. */
export async function writeHandles(path: string, handles: VmHandlesFile): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(handles, null, 2)}\n`, { mode: 0o600, fsync: true });
}

/** The handles file, or undefined when it is missing or does not parse (reconcile then uses the store mirror). */
export async function readHandles(path: string): Promise<VmHandlesFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return handlesSchema.parse(JSON.parse(text)) as VmHandlesFile;
  } catch {
    return undefined;
  }
}
