import { join } from 'node:path';
import {
  checkProcessProof,
  type ProcessProof,
  processExe,
  processExited,
  processStartTime,
} from '../host/index.js';
import { operationFailed } from '../model/errors.js';
import type { PidfileIdentity } from '../model/identity.js';
import type { VmmExit } from './types.js';

/** How often an adopted VMM (not our child, so no exit event) is checked for exit. */
const ADOPTED_POLL_MS = 200;

/** Where every VMM's spawn wrapper writes `<pid> <start time>`: in the VM's run dir. */
export function vmmPidFile(runDir: string): string {
  return join(runDir, 'vmm.pid');
}

/**
 * The identity a VM records before it spawns its VMM: the pidfile the spawn wrapper writes and the
 * argument the VMM's argv will hold whole, so a daemon that dies right after the spawn leaves it findable.
 */
export function plannedVmmProcess(runDir: string, arg: string): PidfileIdentity {
  return { kind: 'pidfile', path: vmmPidFile(runDir), arg };
}

/** true while the process with this start time runs (a zombie has exited: it only awaits its parent). */
export function processAlive(pid: number, startTime: number): boolean {
  return !processExited(pid, startTime);
}

/** The start time of a process we just spawned; it exists until we reap it, so this only fails on races. */
export function startTimeOf(pid: number): number {
  const t = processStartTime(pid);
  if (t === undefined) throw new Error(`process ${pid} vanished before its start time was read`);
  return t;
}

/**
 * The executable of a VMM that is up (its control socket answered, so any wrapper has exec'd it), as
 * /proc/PID/exe names it: part of the proof a later signal checks.
 */
export function exeOf(pid: number): string {
  const exe = processExe(pid);
  if (exe === undefined) throw operationFailed(`the VMM (pid ${pid}) exited before it could be recorded`);
  return exe;
}

/** The VMM named by its proof is running, as banger's uid: what adopt and every signal require. */
export function isOurVmm(proof: ProcessProof): boolean {
  return checkProcessProof(proof, process.geteuid?.() ?? 0).result === 'match';
}

/** Resolves when a process that is not our child exits; its exit status is unknowable to us. */
export function pollExit(pid: number, startTime: number): Promise<VmmExit> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (processAlive(pid, startTime)) return;
      clearInterval(timer);
      resolve({ code: null, signal: null });
    }, ADOPTED_POLL_MS);
    timer.unref();
  });
}

/** Sends a signal to the VMM only while it is provably the one recorded (see checkProcessProof). */
export function signalVmm(proof: ProcessProof, signal: NodeJS.Signals): boolean {
  if (!isOurVmm(proof)) return false;
  try {
    process.kill(proof.pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Waits for `exited`, up to ms; true when it exited in time. */
export async function waitExit(exited: Promise<VmmExit>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([exited.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
