import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { operationFailed } from '../model/errors.js';
import type { TeardownIdentity } from '../model/identity.js';
import { pollExit, processAlive, signalVmm, waitExit } from './process.js';
import type { SavedState, VmmExit, VmmHandles, VmmInstance, VmmStopOptions } from './types.js';

/** After a graceful request timed out, how long the VMM's own quit may take before SIGKILL. */
const QUIT_GRACE_MS = 3000;
/** SIGKILL cannot be ignored; this only bounds a wait on an unkillable (D-state) process. */
const KILL_WAIT_MS = 10_000;

/** The driver-specific halves of stopping a VMM. */
export interface StopHooks {
  /** Asks the guest to power off through the VMM (ACPI power button, Ctrl-Alt-Del). Best effort. */
  requestPowerdown(): Promise<void>;
  /** Asks the VMM itself to exit now (QMP quit flushes disks); undefined when it has no such verb. */
  quit?(): Promise<void>;
  /** Releases the control connection, if any. */
  close(): void;
}

/** The driver-specific halves of pausing a VMM's vCPUs and saving its state. */
export interface PauseHooks {
  pause(): Promise<void>;
  resume(): Promise<void>;
  paused(): Promise<boolean>;
  saveState(dir: string, opts?: { signal?: AbortSignal }): Promise<SavedState>;
}

/** The exit promise: our child's exit event, or /proc polling for a VMM an earlier daemon started. */
export function exitOf(child: ChildProcess | undefined, pid: number, startTime: number): Promise<VmmExit> {
  if (!child) return pollExit(pid, startTime);
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal: signal ?? null })),
  );
}

/** The VMM's sockets, pidfile and jail are dead files once it is gone. */
export async function removeVmmFiles(handles: Pick<VmmHandles, 'files' | 'jailDir'>): Promise<void> {
  await Promise.all(handles.files.map((f) => rm(f, { force: true })));
  if (handles.jailDir) await rm(handles.jailDir, { recursive: true, force: true });
}

/** Runs a stop request, bounded in time: a hung agent or VMM must not hold the stop forever. */
async function bestEffort(fn: (() => Promise<void>) | undefined, boundMs: number): Promise<void> {
  if (!fn) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([fn(), new Promise((resolve) => (timer = setTimeout(resolve, boundMs)))]);
  } catch {
    // A guest or VMM that cannot take the request is handled by the next, harder step.
  } finally {
    clearTimeout(timer);
  }
}

/** One VmmInstance implementation shared by the drivers; only the stop hooks differ. */
export function makeInstance(opts: {
  handles: VmmHandles;
  exited: Promise<VmmExit>;
  hooks: StopHooks & PauseHooks;
}): VmmInstance {
  const { handles, hooks } = opts;
  const { pid, startTime } = handles;
  const exited = opts.exited.then(async (exit) => {
    hooks.close();
    await removeVmmFiles(handles);
    return exit;
  });
  // Only the process: its sockets go when it exits (and a new start clears stale ones), and the run dir is
  // the VM service's to remove, so teardown after a crash needs nothing else from this layer.
  const proof = { pid, startTime, exe: handles.exe, arg: handles.arg };
  const identities: TeardownIdentity[] = [{ kind: 'process', ...proof }];
  const alive = () => processAlive(pid, startTime);

  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    signalVmm(proof, signal);
    if (signal === 'SIGKILL' && !(await waitExit(exited, KILL_WAIT_MS)))
      throw operationFailed(`VMM process ${pid} did not exit after SIGKILL`);
  }

  async function stop({ timeoutMs, guestShutdown }: VmmStopOptions): Promise<void> {
    if (!alive()) {
      await exited;
      return;
    }
    const deadline = Date.now() + timeoutMs;
    await bestEffort(guestShutdown, timeoutMs);
    await bestEffort(() => hooks.requestPowerdown(), Math.max(deadline - Date.now(), 1000));
    if (await waitExit(exited, Math.max(deadline - Date.now(), 0))) return;
    if (hooks.quit) {
      await bestEffort(hooks.quit, QUIT_GRACE_MS);
      if (await waitExit(exited, QUIT_GRACE_MS)) return;
    }
    await kill('SIGKILL');
  }

  return {
    kind: handles.kind,
    pid,
    startTime,
    handles,
    identities,
    agentEndpoint: handles.agentEndpoint,
    consoleLogPath: handles.consoleLogPath,
    stop,
    kill,
    alive,
    exited,
    pause: () => hooks.pause(),
    resume: () => hooks.resume(),
    paused: () => hooks.paused(),
    saveState: (dir, o) => hooks.saveState(dir, o),
  };
}
