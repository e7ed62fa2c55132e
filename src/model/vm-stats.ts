import { z } from 'zod';

/**
 * One sample of a running VM's cost (`vm stats`), taken by the daemon's poller every stats_poll_interval
 * or on demand. Host figures come from /proc and the disks' allocated blocks; guest memory from its agent.
 */
export const vmStatsSchema = z.object({
  id: z.string(),
  name: z.string(),
  sampledAt: z.string(),
  /** Seconds since the VMM process started. */
  uptimeSeconds: z.number(),
  cpu: z.object({
    /** User + system CPU time of the VMM process since it started. */
    seconds: z.number(),
    /** CPU time over wall time in the window, in % of one host CPU (up to 100 × vcpus). */
    percent: z.number(),
    /** The window: since the previous sample of this process, or since it started. */
    windowSeconds: z.number(),
  }),
  memory: z.object({
    /** Resident set of the VMM process (guest RAM it touched, plus the VMM's own). */
    vmmRssBytes: z.number(),
    /** The guest's MemTotal and MemAvailable; null when its agent did not say (an old agent, no answer). */
    guestTotalBytes: z.number().nullable(),
    guestAvailableBytes: z.number().nullable(),
  }),
  disk: z.object({
    /** Bytes the root disk's copy-on-write files really take on the host (st_blocks × 512). */
    rootAllocatedBytes: z.number(),
    /** Bytes the work disk really takes on the host (it is sparse). */
    workAllocatedBytes: z.number(),
  }),
  network: z.object({
    tap: z.string().nullable(),
    /** The tap's rx/tx counters, named from the guest's side; null when unreadable. */
    fromGuestBytes: z.number().nullable(),
    toGuestBytes: z.number().nullable(),
  }),
  lastTouchedAt: z.string(),
});

export type VmStats = z.infer<typeof vmStatsSchema>;
