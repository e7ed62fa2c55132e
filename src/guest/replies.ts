import { z } from 'zod';

/** A guest's memory figure above 16 TiB (in KiB) is a lie; no VM banger makes comes near it. */
const MAX_GUEST_KIB = 16 * 1024 ** 3;

/** zod schemas for what the agent sends back: the agent is inside a guest we do not control. */
export const errorReplySchema = z.object({
  ok: z.literal(false),
  error: z.object({ code: z.string(), message: z.string() }),
});

export const healthSchema = z.object({
  ok: z.literal(true),
  version: z.string(),
  uptimeMs: z.number(),
  pid: z.number(),
  pid1: z.boolean(),
  hostname: z.string(),
  /** What the agent did with `banger.ip=`: "configured", "already" (the initramfs did it), "none" (no
   * setting) or "error: …". Absent from agents older than this field. */
  network: z.string().optional(),
  /**
   * The guest's /proc/meminfo (MemTotal, MemAvailable) in KiB. The guest is untrusted: bounded to 16 TiB,
   * and absent from agents older than this field.
   */
  memory: z
    .object({
      totalKiB: z.number().int().min(0).max(MAX_GUEST_KIB),
      availableKiB: z.number().int().min(0).max(MAX_GUEST_KIB),
    })
    .optional(),
  /** Milliseconds since boot (CLOCK_BOOTTIME) at which each phase was reached. */
  bootPhasesMs: z.object({
    shimStart: z.number().optional(),
    agentStart: z.number().optional(),
    configApplied: z.number().optional(),
    transportReady: z.number().optional(),
  }),
});
/** The health report as the host passes it on (`vm health`): the reply less its `ok`. */
export const agentHealthSchema = healthSchema.omit({ ok: true });
export type AgentHealth = z.infer<typeof agentHealthSchema>;

export const portSchema = z.object({
  protocol: z.enum(['tcp', 'tcp6', 'udp', 'udp6']),
  address: z.string(),
  port: z.number().int(),
  inode: z.number().int(),
});
export type ListeningPort = z.infer<typeof portSchema>;
export const portsSchema = z.object({ ok: z.literal(true), ports: z.array(portSchema) });

export const execStartedSchema = z.object({ ok: z.literal(true), pid: z.number().int() });
export const exitSchema = z.object({ exitCode: z.number().int().nullable(), signal: z.string().nullable() });
export type ExecResult = z.infer<typeof exitSchema>;

export const fileInfoSchema = z.object({
  ok: z.literal(true),
  size: z.number(),
  mode: z.number(),
  uid: z.number(),
  gid: z.number(),
});
export const okSchema = z.object({ ok: z.literal(true) });

/** One entry of a guest directory (list_dir): the entry itself, a symlink is never followed. */
export const dirEntrySchema = z.object({
  name: z.string(),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number(),
  mode: z.number().int(),
  uid: z.number().int(),
  gid: z.number().int(),
  /** Seconds since the epoch. */
  mtime: z.number(),
});
export type DirEntry = z.infer<typeof dirEntrySchema>;
/** `truncated`: the agent stopped before its reply outgrew one frame. */
export const dirListSchema = z.object({
  ok: z.literal(true),
  entries: z.array(dirEntrySchema),
  truncated: z.boolean(),
});
