import { isAbsolute, normalize, sep } from 'node:path';
import { z } from 'zod';

/**
 * Teardown identities: everything needed to undo one host side effect, and nothing else. Written durably
 * (VM runtime in the store + handles.json) before the effect is made and cleared once teardown is
 * confirmed, so reconcile can undo it after a crash without any in-memory state. Both copies are read
 * back through this one schema: a record that does not match its kind exactly is refused, never acted on.
 */

/** Longest path or argument an identity may carry (Linux PATH_MAX); anything longer is not ours. */
const MAX_PATH_BYTES = 4096;

/**
 * An absolute path in normal form: no `.`/`..` segments, no doubled or trailing `/`, no NUL. Paths banger
 * records are built with path.join, so anything else was written by someone else.
 */
const absolutePath = z
  .string()
  .min(2)
  .refine((p) => Buffer.byteLength(p) <= MAX_PATH_BYTES && !p.includes('\0'), 'too long or holds NUL')
  .refine((p) => isAbsolute(p) && normalize(p) === p && !p.endsWith(sep), 'not an absolute normal path');

const name = z.string().min(1).max(255);
const netns = z.string().min(1).max(64).optional();
const pid = z.number().int().min(2).max(4_194_304);
/** Field 22 of /proc/PID/stat: clock ticks since boot. */
const startTime = z.number().int().nonnegative();
/** One whole element of the VMM's argv (its control socket), the proof that a pid is this VM's VMM. */
const arg = z
  .string()
  .min(1)
  .refine((a) => Buffer.byteLength(a) <= MAX_PATH_BYTES && !a.includes('\0'), 'too long or holds NUL');

export const teardownIdentitySchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('bridge'), name, netns }),
  z.strictObject({ kind: z.literal('tap'), name, netns }),
  // NAT rules carry their backend, and for iptables the uplink, because iptables deletes a rule by its spec.
  z.strictObject({
    kind: z.literal('nat'),
    table: name,
    tap: name,
    guestIp: name,
    netns,
    backend: z.enum(['nft', 'iptables']).optional(),
    uplink: name.optional(),
  }),
  z.strictObject({ kind: z.literal('ip'), address: name }),
  // A vsock context id leased to the VM (0-2 are reserved by vsock(7); the kernel's field is 32-bit).
  z.strictObject({ kind: z.literal('cid'), cid: z.number().int().min(3).max(0xffff_fffe) }),
  // Recorded before the device is known (`device: ''`): teardown then finds it by its backing file,
  // which is why every loop banger attaches has a per-VM backing path.
  z.strictObject({ kind: z.literal('loop'), device: z.string().max(64), backingFile: absolutePath }),
  z.strictObject({ kind: z.literal('dm'), name }),
  /**
   * A running VMM, recorded once it is up. A bare pid can be reused, so it carries its start time; a
   * record that was edited or corrupted could still name someone else's live process, so it also carries
   * what that process must be: the executable (/proc/PID/exe when it was recorded) and one argument its
   * argv holds whole. Nothing is signalled unless all of them, and the owner uid, still match.
   */
  z.strictObject({ kind: z.literal('process'), pid, startTime, exe: absolutePath, arg }),
  /**
   * A VMM about to be spawned, recorded before the spawn: the spawn wrapper writes `<pid> <start time>`
   * to `path` (in the VM's run dir) before it execs the VMM, so a daemon that dies between the spawn and
   * recording the `process` identity still leaves the VMM findable, and provable by `arg`.
   */
  z.strictObject({ kind: z.literal('pidfile'), path: absolutePath, arg }),
  /** A file in the VM's own directory (disks, links); teardown removes it and never follows it. */
  z.strictObject({ kind: z.literal('file'), path: absolutePath }),
]);

export type TeardownIdentity = z.infer<typeof teardownIdentitySchema>;
export type ProcessIdentity = Extract<TeardownIdentity, { kind: 'process' }>;
export type PidfileIdentity = Extract<TeardownIdentity, { kind: 'pidfile' }>;
export type FileIdentity = Extract<TeardownIdentity, { kind: 'file' }>;

/** An identity read back that was not acted on, and why. */
export interface RefusedIdentity {
  value: unknown;
  reason: string;
}

/**
 * Parses identities read back from disk one by one: a bad one is refused with its reason and the rest
 * still parse, so one damaged record never hides the others from teardown. With `vmDir`, the paths a
 * teardown would remove or read (`file`, `pidfile`) must also lie inside that VM's directory.
 */
export function parseIdentities(
  values: readonly unknown[],
  vmDir?: string,
): { identities: TeardownIdentity[]; refused: RefusedIdentity[] } {
  const identities: TeardownIdentity[] = [];
  const refused: RefusedIdentity[] = [];
  for (const value of values) {
    const r = teardownIdentitySchema.safeParse(value);
    if (!r.success) {
      refused.push({
        value,
        reason: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      });
      continue;
    }
    const outside = vmDir === undefined ? undefined : pathOutside(r.data, vmDir);
    if (outside) refused.push({ value, reason: `${outside} is outside the VM's directory ${vmDir}` });
    else identities.push(r.data);
  }
  return { identities, refused };
}

/** The path of a file or pidfile identity when it does not lie strictly inside `vmDir` (lexically). */
function pathOutside(id: TeardownIdentity, vmDir: string): string | undefined {
  if (id.kind !== 'file' && id.kind !== 'pidfile') return undefined;
  return id.path.startsWith(`${vmDir}${sep}`) ? undefined : id.path;
}
