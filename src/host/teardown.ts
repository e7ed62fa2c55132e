import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { operationFailed } from '../model/errors.js';
import type { TeardownIdentity } from '../model/identity.js';
import { teardownFile } from './disk/files.js';
import { detachLoop } from './disk/loop.js';
import { teardownBridge } from './net/bridge.js';
import type { IpAllocator } from './net/ip-allocator.js';
import { teardownNat } from './net/nat.js';
import { teardownTap } from './net/tap-pool.js';
import { processGone } from './priv/signal.js';
import type { PrivOps } from './priv/types.js';

export interface TeardownDeps {
  priv: PrivOps;
  stateDir: string;
  /** Needed to release `ip` identities. */
  ips?: IpAllocator;
  /** Where a refused teardown is reported (a tap or bridge under the recorded name that is not ours). */
  log?: Pick<Logger, 'warn'>;
}

/** How long a killed process may take to exit before its devices are released anyway. */
const PROCESS_EXIT_WAIT_MS = 10_000;

/**
 * Undoes one side effect from its identity alone; succeeds when it is already undone. This is what both
 * `vm delete` and reconcile call, so a crash at any point leaves nothing that cannot be removed.
 */
export async function teardownIdentity(deps: TeardownDeps, id: TeardownIdentity): Promise<void> {
  switch (id.kind) {
    case 'bridge':
      return teardownBridge(deps.priv, id, deps.log);
    case 'tap':
      return teardownTap(deps.priv, id, deps.log);
    case 'nat':
      return teardownNat(deps.priv, id);
    case 'ip':
      if (!deps.ips) throw operationFailed(`cannot release ${id.address}: no IP allocator given`);
      return deps.ips.release(id);
    case 'loop':
      return detachLoop(deps.priv, id);
    case 'dm':
      return deps.priv.removeDm({ name: id.name });
    case 'process':
      return killProcess(deps.priv, id);
    case 'file':
      return teardownFile(deps.stateDir, id);
  }
}

/**
 * Undoes identities in reverse order of creation, carrying on past failures, and throws one error that
 * lists them all (the causes in an AggregateError).
 */
export async function teardownAll(
  deps: TeardownDeps,
  identities: readonly TeardownIdentity[],
): Promise<void> {
  const errors: { id: TeardownIdentity; err: unknown }[] = [];
  for (const id of [...identities].reverse()) {
    try {
      await teardownIdentity(deps, id);
    } catch (err) {
      errors.push({ id, err });
    }
  }
  if (errors.length === 0) return;
  const lines = errors.map(
    ({ id, err }) => `${describeIdentity(id)}: ${(err as Error).message ?? String(err)}`,
  );
  throw operationFailed(`teardown left ${errors.length} thing(s) behind: ${lines.join('; ')}`, {
    cause: new AggregateError(
      errors.map((e) => e.err),
      'teardown failures',
    ),
    hint: 'run the operation again; teardown is idempotent',
  });
}

/** A short human name for an identity, for messages and logs. */
export function describeIdentity(id: TeardownIdentity): string {
  switch (id.kind) {
    case 'bridge':
      return `bridge ${id.name}`;
    case 'tap':
      return `tap ${id.name}`;
    case 'nat':
      return `NAT for ${id.guestIp} on ${id.tap}`;
    case 'ip':
      return `IP lease ${id.address}`;
    case 'loop':
      return `loop ${id.device || '?'} (${id.backingFile})`;
    case 'dm':
      return `device-mapper ${id.name}`;
    case 'process':
      return `process ${id.pid}`;
    case 'file':
      return `file ${id.path}`;
  }
}

async function killProcess(priv: PrivOps, id: { pid: number; startTime: number }): Promise<void> {
  const res = await priv.signalProcess({ pid: id.pid, startTime: id.startTime, signal: 'KILL' });
  if (res === 'gone') return;
  // Devices (dm, loop, tap) are only free once the process has exited; a zombie has released them.
  const deadline = Date.now() + PROCESS_EXIT_WAIT_MS;
  while (!processGone(id.pid, id.startTime)) {
    if (Date.now() > deadline) throw operationFailed(`process ${id.pid} did not exit after SIGKILL`);
    await sleep(20);
  }
}
