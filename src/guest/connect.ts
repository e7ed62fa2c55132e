import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentEndpoint, BangerError, operationFailed } from '../model/index.js';
import { AgentClient } from './client.js';
import { type ConnectOptions, openAgentStream } from './transport.js';

/** Connects to the agent behind endpoint. The agent may not be up yet: waitForAgent retries. */
export async function connectAgent(endpoint: AgentEndpoint, opts: ConnectOptions = {}): Promise<AgentClient> {
  return new AgentClient(await openAgentStream(endpoint, opts));
}

function describe(endpoint: AgentEndpoint): string {
  switch (endpoint.kind) {
    case 'virtio-serial':
      return `virtio-serial socket ${endpoint.socketPath}`;
    case 'vsock':
      return `vsock ${endpoint.cid}:${endpoint.port}`;
    case 'firecracker-vsock':
      return `Firecracker vsock ${endpoint.udsPath} port ${endpoint.port}`;
  }
}

/**
 * Connects and asks for health until the agent answers or timeoutMs passes. A virtio-serial socket accepts
 * connections before the guest opened its port, so "connected" means nothing until health answers; each
 * attempt gets its own connection so a half-delivered request never lingers.
 */
export async function waitForAgent(
  endpoint: AgentEndpoint,
  opts: ConnectOptions & { timeoutMs: number },
): Promise<AgentClient> {
  const deadline = Date.now() + opts.timeoutMs;
  let attemptMs = 2000;
  let last: unknown;
  for (;;) {
    if (opts.signal?.aborted) throw new BangerError('cancelled', 'waiting for the guest agent was cancelled');
    const left = deadline - Date.now();
    if (left <= 0) break;
    let client: AgentClient | undefined;
    try {
      client = await connectAgent(endpoint, opts);
      const c = client;
      const budget = Math.min(attemptMs, left);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        c.health(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(operationFailed(`no health reply within ${budget} ms`)), budget);
        }),
      ]).finally(() => clearTimeout(timer));
      return c;
    } catch (err) {
      last = err;
      client?.close();
    }
    attemptMs = Math.min(attemptMs * 2, 8000);
    await sleep(Math.min(200, Math.max(0, deadline - Date.now())), undefined, { signal: opts.signal }).catch(
      () => {},
    );
  }
  const why = last instanceof Error ? `: ${last.message}` : '';
  throw operationFailed(
    `the guest agent did not answer on ${describe(endpoint)} within ${opts.timeoutMs} ms${why}`,
    {
      hint: 'check the VM console log: the agent logs to the console as "banger-agent: ..."',
      cause: last,
    },
  );
}
