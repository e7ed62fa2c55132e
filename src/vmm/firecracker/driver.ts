import { mkdir, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UNIX_SOCKET_PATH_MAX } from '../../config/index.js';
import type { Runner } from '../../host/index.js';
import { BangerError, badRequest, operationFailed } from '../../model/errors.js';
import { withConsole } from '../cmdline.js';
import { CONSOLE_LOG_MAX_BYTES } from '../console.js';
import { exitOf, makeInstance, type PauseHooks, removeVmmFiles, type StopHooks } from '../instance.js';
import { exeOf, isOurVmm, plannedVmmProcess, processAlive, startTimeOf, vmmPidFile } from '../process.js';
import type { Vmm, VmmHandles, VmmInstance, VmmLaunchSpec } from '../types.js';
import { parseHandles, throwIfCancelled, validateLaunchSpec } from '../validate.js';
import { createFirecrackerApi, type FirecrackerApi, FirecrackerApiError } from './api.js';
import {
  FIRECRACKER_MIN_VERSION,
  firecrackerConfigCalls,
  firecrackerRunFiles,
  parseVersion,
  versionAtLeast,
} from './config.js';
import { instanceInfo } from './contract.js';
import { driveLinkNames, makeDriveLinks } from './drive-links.js';
import {
  checkChrootBase,
  JAILED_API_SOCKET,
  jailedNames,
  jailerArgv,
  jailerChrootRoot,
  stageJail,
} from './jailer.js';
import { checkRestoreVersion, firecrackerRestoreCalls } from './restore.js';

/**
 * The argument that proves a pid is this VM's Firecracker. A direct launch names its API socket, in the
 * VM's run dir. Under the jailer the API socket is the same in-chroot path for every VM, so the proof is
 * the id the jailer passes on (`--id <vm name>`, unique among banger's VMs); the recorded executable, the
 * copy in this VM's chroot, narrows it further.
 */
function proofArg(spec: VmmLaunchSpec, jailed: boolean): string {
  return jailed ? spec.name : firecrackerRunFiles(spec.runDir).apiSocket;
}

/** The files of a Firecracker snapshot: guest memory, and the microVM's device state. */
const FIRECRACKER_MEMORY_FILE = 'memory';
const FIRECRACKER_STATE_FILE = 'vmstate';

/** The only configuration a process may have before PUT /snapshot/load (firecracker-api.yaml). */
const LOAD_PRELUDE = new Set(['/logger', '/metrics']);

/** Firecracker binds its API socket within milliseconds; this only bounds one that never does (a dead one is seen at once). */
const API_READY_TIMEOUT_MS = 30_000;
const API_POLL_MS = 25;

export interface FirecrackerDriverDeps {
  runner: Runner;
  firecrackerBin: string;
  /** Launch through the jailer (root only): chroot, cgroups, dropped privileges. */
  jailer?: { jailerBin: string; chrootBase: string; uid: number; gid: number };
  /** Where the short API-socket symlink lives (the jailer's chroot path is long); default: the run dir. */
  shortSocketDir?: string;
}

/** Firecracker boots an uncompressed ELF vmlinux only; a bzImage fails deep inside the VMM. */
async function assertElfKernel(path: string): Promise<void> {
  const fh = await open(path, 'r').catch((err: unknown) => {
    throw badRequest(`kernel ${path} cannot be read`, { cause: err });
  });
  try {
    const { buffer } = await fh.read(Buffer.alloc(4), 0, 4, 0);
    if (!buffer.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])))
      throw badRequest(`Firecracker needs an uncompressed ELF vmlinux, and ${path} is not one`, {
        hint: 'import the kernel with banger so its vmlinux is extracted, or use vmm = "qemu"',
      });
  } finally {
    await fh.close();
  }
}

/** Refuses what Firecracker cannot boot, with the reason, before any process starts. */
export async function preflightFirecracker(spec: VmmLaunchSpec): Promise<void> {
  if (spec.accel !== 'kvm') throw badRequest('Firecracker always runs on KVM; accel "tcg" is QEMU-only');
  if (spec.machine !== undefined && spec.machine !== 'microvm')
    throw badRequest(
      `Firecracker has only its own virtio-mmio microVM; machine "${spec.machine}" is QEMU-only`,
      {
        hint: 'use a kernel with virtio-mmio (e.g. generic-6.12), or vmm = "qemu"',
      },
    );
  const f = spec.kernelFeatures;
  if (f?.configKnown && !f.virtioMmioCmdlineDevices)
    throw badRequest(
      `kernel ${spec.kernelPath} lacks CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so it cannot find Firecracker's devices`,
      { hint: 'use a Firecracker-ready kernel (e.g. generic-6.12) or vmm = "qemu"' },
    );
  await assertElfKernel(spec.kernelPath);
}

async function waitForApi(api: FirecrackerApi, alive: () => boolean): Promise<{ vmm_version: string }> {
  const deadline = Date.now() + API_READY_TIMEOUT_MS;
  for (;;) {
    if (!alive()) throw new Error('Firecracker exited before its API socket answered');
    try {
      return await api.get<{ vmm_version: string }>('/');
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, API_POLL_MS));
  }
}

function apiHooks(api: FirecrackerApi, jailed: boolean): StopHooks & PauseHooks {
  return {
    async requestPowerdown() {
      // Firecracker's only guest-facing stop: an i8042 Ctrl-Alt-Del, which guests turn into a reboot,
      // and (with reboot=k) Firecracker exits.
      await api.put('/actions', { action_type: 'SendCtrlAltDel' });
    },
    close() {},
    async pause() {
      await api.patch('/vm', { state: 'Paused' });
    },
    async resume() {
      await api.patch('/vm', { state: 'Resumed' });
    },
    async paused() {
      return instanceInfo.parse(await api.get('/')).state === 'Paused';
    },
    async saveState(dir) {
      // A jailed Firecracker resolves paths in its chroot, where the snapshot directory is not.
      if (jailed)
        throw badRequest('snapshots of a VM under the jailer are not built yet', {
          hint: 'set jailer_enabled = false for VMs you want to snapshot',
        });
      const info = instanceInfo.parse(await api.get('/'));
      await api.put('/snapshot/create', {
        // Full: a snapshot stands alone (content-addressed, restored by any number of forks). A Diff holds
        // only the pages dirtied since the last snapshot (it needs track_dirty_pages at boot) and is
        // usable only merged onto the full one it follows; banger keeps no such chain.
        snapshot_type: 'Full',
        snapshot_path: join(dir, FIRECRACKER_STATE_FILE),
        mem_file_path: join(dir, FIRECRACKER_MEMORY_FILE),
      });
      return { files: [FIRECRACKER_MEMORY_FILE, FIRECRACKER_STATE_FILE], vmmVersion: info.vmm_version };
    },
  };
}

/** The Firecracker driver: configures the VM through its API socket per firecracker-api.yaml. */
export function createFirecrackerVmm(deps: FirecrackerDriverDeps): Vmm {
  async function start(spec: VmmLaunchSpec, opts: { signal?: AbortSignal } = {}): Promise<VmmInstance> {
    validateLaunchSpec(spec);
    const jail = deps.jailer;
    if (spec.incoming && jail)
      throw badRequest('restoring a snapshot under the jailer is not built yet', {
        hint: 'set jailer_enabled = false to fork under Firecracker',
      });
    await preflightFirecracker(spec);
    const files = firecrackerRunFiles(spec.runDir);
    const restore = spec.incoming ? firecrackerRestoreCalls(spec, files) : undefined;
    const chrootRoot = jail ? jailerChrootRoot(jail.chrootBase, deps.firecrackerBin, spec.name) : undefined;
    const names = jailedNames(spec, files);
    const links = driveLinkNames(spec);
    const map = chrootRoot ? (p: string) => names.get(p) ?? p : (p: string) => links.get(p) ?? p;
    const { calls, agentEndpoint: endpoint } = firecrackerConfigCalls(
      { ...spec, cmdline: withConsole(spec.cmdline) },
      files,
      map,
    );
    // Sockets Firecracker makes inside a chroot are reached through a short symlink (AF_UNIX limit).
    const apiSocket = chrootRoot
      ? join(deps.shortSocketDir ?? spec.runDir, `fc-${spec.name}.sock`)
      : files.apiSocket;
    const agentEndpoint =
      chrootRoot && endpoint.kind === 'firecracker-vsock'
        ? { ...endpoint, udsPath: join(chrootRoot, map(files.vsockSocket)) }
        : endpoint;
    for (const sock of [apiSocket, files.vsockSocket])
      if (Buffer.byteLength(sock) > UNIX_SOCKET_PATH_MAX)
        throw badRequest(`socket path too long for AF_UNIX (${UNIX_SOCKET_PATH_MAX} bytes): ${sock}`);
    throwIfCancelled(opts.signal, spec.name);
    // Before anything is written: a base another user could steer is refused, not built in.
    if (jail) await checkChrootBase(jail.chrootBase);

    await mkdir(spec.runDir, { recursive: true, mode: 0o700 });
    for (const f of [files.apiSocket, files.vsockSocket, apiSocket]) await rm(f, { force: true });
    await writeFile(files.consoleLog, '', { mode: 0o600 });
    const pidFile = vmmPidFile(spec.runDir);
    await rm(pidFile, { force: true });
    if (chrootRoot && jail) {
      await stageJail(chrootRoot, spec, files, map);
      await symlink(join(chrootRoot, JAILED_API_SOCKET), apiSocket);
    } else {
      await writeFile(files.log, '', { mode: 0o600 });
      await writeFile(files.metrics, '', { mode: 0o600 });
      await makeDriveLinks(spec.runDir, links);
    }

    const argv =
      chrootRoot && jail
        ? jailerArgv({ ...jail, firecrackerBin: deps.firecrackerBin, id: spec.name, netns: spec.netns })
        : [deps.firecrackerBin, '--api-sock', files.apiSocket, '--id', spec.name];
    // The jailer has no pidfile option and execs Firecracker in place: the spawn wrapper writes the pid
    // both share, before the jailer runs, so a jailed Firecracker is as findable after a crash as any VMM.
    const child = deps.runner.spawn(argv, {
      detached: true,
      logPath: files.consoleLog,
      logMaxBytes: CONSOLE_LOG_MAX_BYTES,
      netns: jail ? undefined : spec.netns,
      pidFile,
      // Where the drive links resolve (a jailed Firecracker works in its chroot).
      ...(jail ? {} : { cwd: spec.runDir }),
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const pid = child.pid;
    if (pid === undefined) {
      const err = await spawnError;
      throw operationFailed(`could not start ${argv[0]}: ${err.message}`, { cause: err });
    }
    const startTime = startTimeOf(pid);
    const exited = exitOf(child, pid, startTime);
    const api = createFirecrackerApi(apiSocket);
    const vmmFiles = {
      files: chrootRoot
        ? [apiSocket, pidFile]
        : [
            files.apiSocket,
            files.vsockSocket,
            pidFile,
            ...[...links.values()].map((n) => join(spec.runDir, n)),
          ],
      ...(chrootRoot ? { jailDir: dirname(chrootRoot) } : {}),
    };
    let instance: VmmInstance | undefined;
    try {
      const info = await waitForApi(api, () => processAlive(pid, startTime));
      // The API answered, so the wrapper and the jailer have exec'd Firecracker: its executable is what
      // a signal will require from now on.
      const handles: VmmHandles = {
        kind: 'firecracker',
        pid,
        startTime,
        exe: exeOf(pid),
        arg: proofArg(spec, chrootRoot !== undefined),
        controlSocket: apiSocket,
        consoleLogPath: files.consoleLog,
        agentEndpoint,
        ...vmmFiles,
      };
      instance = makeInstance({ handles, exited, hooks: apiHooks(api, chrootRoot !== undefined) });
      const version = parseVersion(info.vmm_version);
      if (!version || !versionAtLeast(version, FIRECRACKER_MIN_VERSION))
        throw badRequest(
          `Firecracker ${info.vmm_version} is older than ${FIRECRACKER_MIN_VERSION.join('.')}, the oldest banger supports`,
        );
      if (restore && spec.incoming) {
        checkRestoreVersion(info.vmm_version, spec.incoming.vmmVersion);
        // A load is taken only by a fresh process: the logger and metrics are all it may have before.
        for (const call of calls.filter((c) => LOAD_PRELUDE.has(c.path))) await api.put(call.path, call.body);
        throwIfCancelled(opts.signal, spec.name);
        await api.put(restore.load.path, restore.load.body);
        for (const call of restore.drives) await api.patch(call.path, call.body);
        await api.patch('/vm', { state: 'Resumed' });
      } else {
        for (const call of calls) {
          throwIfCancelled(opts.signal, spec.name);
          await api.put(call.path, call.body);
        }
        await api.put('/actions', { action_type: 'InstanceStart' });
      }
    } catch (err) {
      if (instance) await instance.kill();
      else {
        // Not yet recorded as a VMM: our own child, killed through its handle.
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
        await removeVmmFiles(vmmFiles);
      }
      if (opts.signal?.aborted) throw new BangerError('cancelled', `start of VM ${spec.name} was cancelled`);
      if (err instanceof BangerError) throw err;
      const log = (await readFile(files.consoleLog, 'utf8').catch(() => ''))
        .trim()
        .split('\n')
        .slice(-5)
        .join('\n');
      const why = err instanceof FirecrackerApiError ? err.message : (err as Error).message;
      throw operationFailed(
        `Firecracker for VM ${spec.name} failed to start: ${why}${log ? `\n${log}` : ''}`,
        {
          cause: err,
        },
      );
    }
    return instance;
  }

  async function adopt(input: VmmHandles): Promise<VmmInstance | null> {
    const handles = parseHandles(input);
    if (handles.kind !== 'firecracker')
      throw badRequest(`handles of a ${handles.kind} VM given to the Firecracker driver`);
    if (!isOurVmm(handles)) return null;
    return makeInstance({
      handles,
      exited: exitOf(undefined, handles.pid, handles.startTime),
      hooks: apiHooks(createFirecrackerApi(handles.controlSocket), handles.jailDir !== undefined),
    });
  }

  return {
    kind: 'firecracker',
    plan: (spec) => plannedVmmProcess(spec.runDir, proofArg(spec, deps.jailer !== undefined)),
    capabilities: { agentTransports: ['firecracker-vsock'], diskFormats: ['raw'], accels: ['kvm'] },
    start,
    adopt,
  };
}
