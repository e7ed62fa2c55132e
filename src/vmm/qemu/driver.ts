import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UNIX_SOCKET_PATH_MAX } from '../../config/index.js';
import type { Runner } from '../../host/index.js';
import { BangerError, badRequest, operationFailed } from '../../model/errors.js';
import { CONSOLE_LOG_MAX_BYTES } from '../console.js';
import { exitOf, makeInstance, type PauseHooks, type StopHooks } from '../instance.js';
import { exeOf, isOurVmm, plannedVmmProcess, startTimeOf, vmmPidFile } from '../process.js';
import type { Vmm, VmmHandles, VmmInstance, VmmLaunchSpec } from '../types.js';
import { parseHandles, throwIfCancelled, validateLaunchSpec } from '../validate.js';
import { buildQemuCommand, type QemuHostFacts, qemuRunFiles, qmpArg } from './args.js';
import { restoreQemuState, saveQemuState } from './migrate.js';
import { QmpClient } from './qmp.js';

/** QEMU creates its QMP socket before the guest runs; this bounds a QEMU that never gets that far. */
const QMP_READY_TIMEOUT_MS = 30_000;
const QMP_POLL_MS = 50;

/**
 * A daemon running as its owner opens its tap through /dev/net/tun, which the kernel lets it attach to
 * because the helper made the tap for its uid; the device node itself must still be open to it.
 */
const TUN_HINT =
  'the daemon runs as its owner and cannot open /dev/net/tun: give the node its usual mode (0666, as ' +
  'udev sets it on Debian and Ubuntu; a tap can only be attached by the uid it was made for): chmod 0666 /dev/net/tun';

export interface QemuDriverDeps extends QemuHostFacts {
  runner: Runner;
}

async function tail(path: string, lines = 8): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** Connects to QMP once the socket exists, failing fast when QEMU exits first (bad arguments, no KVM …). */
async function waitForQmp(
  path: string,
  child: ChildProcess,
  signal: AbortSignal | undefined,
): Promise<QmpClient> {
  const deadline = Date.now() + QMP_READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('exited');
    if (signal?.aborted) throw new Error('aborted');
    try {
      return await QmpClient.connect(path, 2000);
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, QMP_POLL_MS));
  }
}

function qmpHooks(client: QmpClient | undefined, socketPath: string, runner: Runner): StopHooks & PauseHooks {
  let qmp = client;
  const ensure = async () => {
    qmp ??= await QmpClient.connect(socketPath);
    return qmp;
  };
  return {
    async requestPowerdown() {
      await (await ensure()).execute('system_powerdown');
    },
    async quit() {
      // `quit` closes the connection as QEMU exits, so the reply may never come.
      const c = await ensure();
      await Promise.race([c.execute('quit').catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
    },
    close() {
      qmp?.close();
      qmp = undefined;
    },
    async pause() {
      await (await ensure()).execute('stop');
    },
    async resume() {
      await (await ensure()).execute('cont');
    },
    async paused() {
      const status = (await (await ensure()).execute('query-status')) as { running?: boolean };
      return status.running === false;
    },
    async saveState(dir, opts) {
      // A VM started with shareable RAM (also after an adopt: the file is in its run dir) saves it as a file.
      const ram = qemuRunFiles(dirname(socketPath)).ram;
      return saveQemuState(await ensure(), dir, {
        ...opts,
        ...(existsSync(ram)
          ? {
              ramFile: ram,
              // Sparse: pages the guest never touched stay holes. Reflinked where the filesystem can.
              copy: async (from: string, to: string) => {
                await runner.run(['cp', '--sparse=always', '--reflink=auto', '--', from, to]);
              },
            }
          : {}),
      });
    },
  };
}

/** The QEMU driver: microvm or q35 machine, KVM or TCG, QMP for control, virtio-serial or vhost-vsock for the agent. */
export function createQemuVmm(deps: QemuDriverDeps): Vmm {
  async function start(spec: VmmLaunchSpec, opts: { signal?: AbortSignal } = {}): Promise<VmmInstance> {
    validateLaunchSpec(spec);
    const cmd = buildQemuCommand(spec, deps);
    for (const sock of [cmd.files.qmpSocket, cmd.files.agentSocket])
      if (Buffer.byteLength(sock) > UNIX_SOCKET_PATH_MAX)
        throw badRequest(`socket path too long for AF_UNIX (${UNIX_SOCKET_PATH_MAX} bytes): ${sock}`, {
          hint: 'use a shorter runtime directory',
        });
    throwIfCancelled(opts.signal, spec.name);
    await mkdir(spec.runDir, { recursive: true, mode: 0o700 });
    // Sockets left by a VMM that died uncleanly would make QEMU's bind fail.
    await rm(cmd.files.qmpSocket, { force: true });
    await rm(cmd.files.agentSocket, { force: true });
    // A RAM file left by an earlier run of this VM: the guest starts afresh (and QEMU would reuse its content).
    await rm(cmd.files.ram, { force: true });
    await writeFile(cmd.files.consoleLog, '', { mode: 0o600 });
    const pidFile = vmmPidFile(spec.runDir);
    await rm(pidFile, { force: true });

    const child = deps.runner.spawn(cmd.argv, {
      detached: true,
      logPath: cmd.files.consoleLog,
      logMaxBytes: CONSOLE_LOG_MAX_BYTES,
      netns: spec.netns,
      pidFile,
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const pid = child.pid;
    if (pid === undefined) {
      const err = await spawnError;
      throw operationFailed(`could not start ${deps.qemuBin}: ${err.message}`, { cause: err });
    }
    const startTime = startTimeOf(pid);
    const exited = exitOf(child, pid, startTime);
    let qmp: QmpClient | undefined;
    let exe: string;
    try {
      qmp = await waitForQmp(cmd.files.qmpSocket, child, opts.signal);
      // QMP answered, so the spawn wrapper has exec'd QEMU: this is the executable a signal will require.
      exe = exeOf(pid);
      if (spec.incoming)
        await restoreQemuState(qmp, spec.incoming.memoryPath, spec.incoming.vmmVersion, {
          ...opts,
          ramFromFile: spec.incoming.ramPath !== undefined,
        });
    } catch (err) {
      qmp?.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await rm(cmd.files.qmpSocket, { force: true });
      await rm(cmd.files.agentSocket, { force: true });
      if (opts.signal?.aborted) throw new BangerError('cancelled', `start of VM ${spec.name} was cancelled`);
      // The restore's own refusals (another QEMU version) say what is wrong better than the console does.
      if (err instanceof BangerError && err.code === 'bad_request') throw err;
      // QEMU's last words pass through the console keeper; read the log once they are on disk (bounded).
      await Promise.race([child.logClosed, sleep(2000)]);
      const last = await tail(cmd.files.consoleLog);
      throw operationFailed(`QEMU for VM ${spec.name} exited during start-up: ${last}`, {
        cause: err,
        ...(/\/dev\/net\/tun: Permission denied/.test(last) ? { hint: TUN_HINT } : {}),
      });
    }
    const handles: VmmHandles = {
      kind: 'qemu',
      pid,
      startTime,
      exe,
      arg: qmpArg(spec.runDir),
      controlSocket: cmd.files.qmpSocket,
      consoleLogPath: cmd.files.consoleLog,
      agentEndpoint: cmd.agentEndpoint,
      files: [
        cmd.files.qmpSocket,
        ...(cmd.agentEndpoint.kind === 'virtio-serial' ? [cmd.files.agentSocket] : []),
        pidFile,
        // The guest's RAM (as large as its touched memory) goes with the process.
        ...(spec.shareableRam ? [cmd.files.ram] : []),
      ],
    };
    return makeInstance({ handles, exited, hooks: qmpHooks(qmp, cmd.files.qmpSocket, deps.runner) });
  }

  async function adopt(input: VmmHandles): Promise<VmmInstance | null> {
    const handles = parseHandles(input);
    if (handles.kind !== 'qemu') throw badRequest(`handles of a ${handles.kind} VM given to the QEMU driver`);
    // Same pid and start time is the same process; its owner, executable and whole -qmp argument guard
    // against a handles.json edited to point at someone else's process.
    if (!isOurVmm(handles)) return null;
    const exited = exitOf(undefined, handles.pid, handles.startTime);
    return makeInstance({ handles, exited, hooks: qmpHooks(undefined, handles.controlSocket, deps.runner) });
  }

  return {
    kind: 'qemu',
    plan: (spec) => plannedVmmProcess(spec.runDir, qmpArg(spec.runDir)),
    capabilities: {
      agentTransports: deps.vhostVsock ? ['vsock', 'virtio-serial'] : ['virtio-serial'],
      diskFormats: ['raw', 'qcow2'],
      accels: ['kvm', 'tcg'],
    },
    start,
    adopt,
  };
}
