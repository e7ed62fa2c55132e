import { z } from 'zod';
import { GuestConnectError, type GuestTcpStream } from '../../../guest/index.js';
import type { AgentPort } from '../vms/index.js';

const portsSchema = z.array(z.object({ protocol: z.string(), address: z.string(), port: z.number() }));

const LOOPBACK_OR_ANY = new Set(['0.0.0.0', '::', '127.0.0.1', '::1']);
/** Longer than the agent's own connect limit (30 s), so the guest's answer, not ours, decides. */
const CONNECT_WAIT_MS = 40_000;

/**
 * Connects to a guest port: through the guest's loopback first (a server on 0.0.0.0, :: or 127.0.0.1
 * answers there), and only when that is refused, to the address the guest's listener is bound to (a
 * server bound to its eth0 address, or to ::1 alone). The fallback costs a `ports` round trip, so only
 * connections that would have failed pay for it.
 */
export async function connectGuestPort(agent: AgentPort, port: number): Promise<GuestTcpStream> {
  try {
    return await agent.connectTcp({ port }, CONNECT_WAIT_MS);
  } catch (err) {
    if (!(err instanceof GuestConnectError) || err.reason !== 'refused') throw err;
    const listeners = portsSchema.safeParse(await agent.ports());
    const other = listeners.success
      ? listeners.data.find(
          (p) => p.protocol.startsWith('tcp') && p.port === port && !LOOPBACK_OR_ANY.has(p.address),
        )
      : undefined;
    if (!other && listeners.success) {
      const v6loop = listeners.data.find(
        (p) => p.protocol === 'tcp6' && p.port === port && p.address === '::1',
      );
      if (v6loop) return agent.connectTcp({ port, address: '::1' }, CONNECT_WAIT_MS);
    }
    if (!other) throw err;
    return agent.connectTcp({ port, address: other.address }, CONNECT_WAIT_MS);
  }
}
