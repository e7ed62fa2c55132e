import { readdirSync } from 'node:fs';
import type { Layout } from '../config/paths.js';
import { helloPrivHelper } from '../host/priv/remote.js';
import { processArgv, processUids } from '../host/proc.js';
import type { Runner } from '../host/runner.js';
import { createRpcClient } from '../rpc/index.js';
import { type InstallRecord, readInstallRecord } from './install-record.js';
import { helperPaths } from './run.js';
import { systemdBooted, type UnitState, unitState } from './systemd.js';
import { UNITS } from './uninstall.js';

export interface EndpointStatus {
  socket: string;
  /** The version the process answered with; absent when it did not answer. */
  version?: string;
  /** The uid the helper serves (its `hello`). */
  ownerUid?: number;
  pid?: number;
  error?: string;
}

export interface SystemStatus {
  systemd: boolean;
  /** The install record, when there is one. */
  record?: InstallRecord;
  recordError?: string;
  /** Both units' state (only when systemd runs). */
  units: UnitState[];
  helper: EndpointStatus;
  daemon: EndpointStatus;
  /** bangerd-root and bangerd processes found in /proc, with their uids. */
  processes: { pid: number; program: 'bangerd' | 'bangerd-root'; uid: number }[];
  /** Both processes answer (and, under systemd, both units are active). */
  healthy: boolean;
}

/**
 * Everything `banger system status` can learn without changing anything: systemd's view of both units
 * (when systemd runs), the install record, whether the helper and the daemon answer on their sockets and
 * with which version, and the processes themselves. Works on a host without systemd (`system run`).
 */
export async function systemStatus(
  layout: Layout,
  env: NodeJS.ProcessEnv,
  runner: Runner,
  version: string,
): Promise<SystemStatus> {
  const systemd = systemdBooted();
  let record: InstallRecord | undefined;
  let recordError: string | undefined;
  try {
    record = readInstallRecord(layout.configDir);
  } catch (err) {
    recordError = (err as Error).message;
  }
  const helperSocket = record?.helper_socket ?? helperPaths(env).socket;
  const [units, helper, daemon] = await Promise.all([
    systemd ? Promise.all(UNITS.map((u) => unitState(runner, u))) : Promise.resolve([]),
    askHelper(helperSocket),
    askDaemon(layout.socketPath, version),
  ]);
  const healthy =
    helper.version !== undefined && daemon.version !== undefined && units.every((u) => u.active === 'active');
  return {
    systemd,
    ...(record ? { record } : {}),
    ...(recordError ? { recordError } : {}),
    units,
    helper,
    daemon,
    processes: findProcesses(),
    healthy,
  };
}

async function askHelper(socket: string): Promise<EndpointStatus> {
  try {
    const hello = await helloPrivHelper(socket);
    return { socket, version: hello.version, ownerUid: hello.ownerUid };
  } catch (err) {
    return { socket, error: (err as Error).message };
  }
}

async function askDaemon(socket: string, version: string): Promise<EndpointStatus> {
  try {
    const ping = await createRpcClient(socket, version).call('ping', {}, { timeoutMs: 5000 });
    return { socket, version: ping.version, pid: ping.pid };
  } catch (err) {
    return { socket, error: (err as Error).message };
  }
}

/** Processes whose argv[1] is banger's `bin/bangerd` or `bin/bangerd-root` (node runs both). */
function findProcesses(): SystemStatus['processes'] {
  const found: SystemStatus['processes'] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const script = processArgv(pid)?.[1] ?? '';
    const program = script.endsWith('/bin/bangerd-root')
      ? 'bangerd-root'
      : script.endsWith('/bin/bangerd')
        ? 'bangerd'
        : undefined;
    const uids = program && processUids(pid);
    if (program && uids) found.push({ pid, program, uid: uids.real });
  }
  return found;
}
