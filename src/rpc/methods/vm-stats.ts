import { z } from 'zod';
import { agentHealthSchema } from '../../guest/replies.js';
import { vmStatsSchema } from '../../model/vm-stats.js';
import { method } from './define.js';

const ref = z.string().min(1);

/** `vm.stats`, `vm.health`, `vm.ping`: a running VM's cost and its agent's state (issue 17). */
export const vmStatsMethods = {
  'vm.stats': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ stats: vmStatsSchema }),
    summary:
      "A fresh sample of a running VM: its VMM's CPU and RSS, guest memory, disks' allocated bytes, tap bytes, uptime.",
  })),
  'vm.health': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ name: z.string(), health: agentHealthSchema }),
    summary: "A running VM's agent health: version, uptime, boot phases, network state, memory.",
  })),
  'vm.ping': method(() => ({
    params: z.strictObject({ ref }),
    result: z.object({ name: z.string(), rttMs: z.number(), agentVersion: z.string() }),
    summary: "One request's round trip through a running VM's agent.",
  })),
} as const;

/** The names above, for the handler groups that leave them to the stats handlers. */
export type VmStatsMethod = keyof typeof vmStatsMethods;
