import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { BangerError, badRequest, operationFailed } from '../model/errors.js';
import type { PidfileIdentity, TeardownIdentity } from '../model/identity.js';
import { teardownFile } from './disk/files.js';
import { detachLoop } from './disk/loop.js';
import { teardownBridge } from './net/bridge.js';
import type { CidAllocator } from './net/cid-allocator.js';
import type { IpAllocator } from './net/ip-allocator.js';
import { teardownNat } from './net/nat.js';
import { teardownTap } from './net/tap-pool.js';
import { readPidFile } from './pidfile.js';
import type { PrivOps, SignalRequest } from './priv/types.js';
import { validateEntryUnder } from './priv/validate.js';
import { processExited } from './proc.js';

export interface TeardownDeps {
  priv: PrivOps;
  /**
   * The VM's own directory: every `file` and `pidfile` identity must lie inside it (resolved, so neither
   * `..` nor a symlink leads out), or it is refused and left alone. Absent: every such identity is refused.
   */
  vmDir?: string;
  /** Needed to release `ip` identities. */
  ips?: IpAllocator;
  /** Needed to release `cid` identities. */
  cids?: CidAllocator;
  /** Hears of identities refused rather than undone: a link that is not ours, a process that is not the recorded one. */
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
    case 'cid':
      if (!deps.cids) throw operationFailed(`cannot release vsock CID ${id.cid}: no CID allocator given`);
      return deps.cids.release(id);
    case 'loop':
      return detachLoop(deps.priv, id);
    case 'dm':
      return deps.priv.removeDm({ name: id.name });
    case 'process':
      return killProcess(deps, id);
    case 'pidfile':
      return refusable(deps, id, () => killByPidFile(deps, inVmDir(deps.vmDir, id), id));
    case 'file':
      return refusable(deps, id, () => teardownFile(inVmDir(deps.vmDir, id), id));
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
    case 'cid':
      return `vsock CID lease ${id.cid}`;
    case 'loop':
      return `loop ${id.device || '?'} (${id.backingFile})`;
    case 'dm':
      return `device-mapper ${id.name}`;
    case 'process':
      return `process ${id.pid}`;
    case 'pidfile':
      return `process of pidfile ${id.path}`;
    case 'file':
      return `file ${id.path}`;
  }
}

/**
 * SIGKILLs the recorded process through PrivOps, which checks the proof first. A live process that has
 * the pid and start time but not the owner, executable or argument is not ours (a damaged or forged
 * record): it is left alone and the identity counts as undone, since the process it names is gone.
 */
async function killProcess(deps: TeardownDeps, proof: Omit<SignalRequest, 'signal'>): Promise<void> {
  const res = await deps.priv.signalProcess({ ...proof, signal: 'KILL' });
  if (res.outcome === 'gone') return;
  if (res.outcome === 'refused') {
    deps.log?.warn({ pid: proof.pid, reason: res.reason }, 'process identity refused; not signalled');
    return;
  }
  // Devices (dm, loop, tap) are only free once the process has exited; a zombie has released them.
  const deadline = Date.now() + PROCESS_EXIT_WAIT_MS;
  while (!processExited(proof.pid, proof.startTime)) {
    if (Date.now() > deadline) throw operationFailed(`process ${proof.pid} did not exit after SIGKILL`);
    await sleep(20);
  }
}

/**
 * A VMM spawned but never recorded (the daemon died in between): its wrapper wrote its pid and start
 * time, so it is killed with the same proof as a recorded one, less the executable it was never seen with.
 */
async function killByPidFile(deps: TeardownDeps, vmDir: string, id: PidfileIdentity): Promise<void> {
  // The VM's directory is gone (a delete removed it after killing what its pidfile named): so is the file.
  if (!existsSync(vmDir)) return;
  const path = validateEntryUnder(vmDir, id.path);
  const recorded = await readPidFile(path);
  if (recorded) await killProcess(deps, { ...recorded, arg: id.arg });
}

function inVmDir(vmDir: string | undefined, id: TeardownIdentity): string {
  if (vmDir === undefined) throw badRequest(`refusing ${describeIdentity(id)}: no VM directory to hold it`);
  return vmDir;
}

/**
 * Runs the teardown of a path identity; a path that leads out of the VM's directory, or a pidfile that was
 * not written by the wrapper, is refused (bad_request): logged and left alone, never acted on. The identity
 * then counts as undone, so a forged record cannot wedge a delete.
 */
async function refusable(deps: TeardownDeps, id: TeardownIdentity, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof BangerError) || err.code !== 'bad_request') throw err;
    deps.log?.warn({ identity: id, reason: err.message }, 'identity refused; not acted on');
  }
}
