import { z } from 'zod';
import { method } from './define.js';

const ref = z.string().min(1);

/** One forward of a VM (src/daemon/services/forwards ForwardInfo on the wire). */
export const forwardInfoSchema = z.object({
  hostAddress: z.string(),
  hostPort: z.number().int(),
  guestPort: z.number().int(),
  auto: z.boolean(),
  connections: z.number().int(),
  error: z.string().optional(),
});

/** `[HOST_ADDR:]HOST_PORT:GUEST_PORT`, parsed by the daemon (a bad one is a bad_request naming it). */
export const forwardSpecsSchema = z.array(z.string().min(1).max(80)).max(64);

const listResult = z.object({ name: z.string(), auto: z.boolean(), forwards: z.array(forwardInfoSchema) });

/** `forward.*` methods: TCP ports of the host relayed to a running VM's ports through its agent. */
export const forwardMethods = {
  'forward.list': method(() => ({
    params: z.strictObject({ ref }),
    result: listResult,
    summary: "A VM's active forwards (none when it is not running) and whether --auto is on.",
  })),
  'forward.add': method(() => ({
    params: z.strictObject({ ref, specs: forwardSpecsSchema.min(1) }),
    result: listResult,
    summary: 'Listen on host ports and relay each connection to a guest port (running VMs; all or none).',
  })),
  'forward.remove': method(() => ({
    params: z.strictObject({ ref, hostPorts: z.array(z.number().int().min(0).max(65535)).min(1) }),
    result: listResult,
    summary: 'Stop the forwards listening on these host ports; their connections are reset.',
  })),
  'forward.auto': method(() => ({
    params: z.strictObject({ ref, enabled: z.boolean() }),
    result: listResult,
    summary: 'Forward every TCP port the guest listens on, as it starts listening (running VMs), or stop.',
  })),
} as const;
