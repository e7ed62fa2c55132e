import { z } from 'zod';
import type { AgentPort } from '../vms/index.js';

const portsSchema = z.array(z.object({ protocol: z.string(), port: z.number().int().min(1).max(65535) }));

/** The TCP ports the guest listens on (any address: the agent reaches loopback-only servers too). */
export async function scanGuestListeners(agent: AgentPort): Promise<Set<number>> {
  const parsed = portsSchema.safeParse(await agent.ports());
  if (!parsed.success) return new Set();
  return new Set(parsed.data.filter((p) => p.protocol.startsWith('tcp')).map((p) => p.port));
}
