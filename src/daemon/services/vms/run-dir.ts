import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { parseIdentities, type TeardownIdentity } from '../../../model/identity.js';

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
    /** The VM's port forwards while it runs, for a restarted daemon to listen again. */
    forwards: join(dir, 'forwards.json'),
    /** Present while a delete is under way: reconcile finishes it. */
    deleting: join(dir, 'deleting'),
  };
}

const handlesSchema = z.object({
  vmId: z.string(),
  // Each identity is parsed on its own (parseIdentities), so one damaged entry is refused alone.
  identities: z.array(z.unknown()),
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

/** handles.json holds a few identities; a bigger file was not written by banger and is not read. */
const HANDLES_MAX_BYTES = 1024 * 1024;

/**
 * The handles file, or undefined when it is missing or does not parse (reconcile then uses the store
 * mirror). Every identity must pass its kind's schema, and file and pidfile identities must lie inside
 * this VM's directory; any other is refused, logged with the reason, and left out.
 */
export async function readHandles(
  path: string,
  log: Pick<Logger, 'warn'>,
): Promise<VmHandlesFile | undefined> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(HANDLES_MAX_BYTES + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > HANDLES_MAX_BYTES) {
        log.warn({ path }, `handles.json is over ${HANDLES_MAX_BYTES} bytes; not read`);
        return undefined;
      }
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
  let raw: z.infer<typeof handlesSchema>;
  try {
    raw = handlesSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
  const { identities, refused } = parseIdentities(raw.identities, dirname(path));
  for (const r of refused)
    log.warn({ path, identity: r.value, reason: r.reason }, 'teardown identity refused; not acted on');
  return { ...(raw as Omit<VmHandlesFile, 'identities'>), identities };
}
