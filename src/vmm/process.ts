import { readFileSync } from 'node:fs';
import { processStartTime } from '../host/index.js';
import type { VmmExit } from './types.js';

/** How often an adopted VMM (not our child, so no exit event) is checked for exit. */
const ADOPTED_POLL_MS = 200;

/** true while the process with this start time runs (a zombie has exited: it only awaits its parent). */
export function processAlive(pid: number, startTime: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // comm may hold spaces and parentheses, so fields are counted after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[19]) === startTime && rest[0] !== 'Z' && rest[0] !== 'X';
}

/** The start time of a process we just spawned; it exists until we reap it, so this only fails on races. */
export function startTimeOf(pid: number): number {
  const t = processStartTime(pid);
  if (t === undefined) throw new Error(`process ${pid} vanished before its start time was read`);
  return t;
}

/** The command line of a process as argv, or undefined when it is gone. */
export function processArgv(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
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

/** Sends a signal to pid only while it is still the process we started; false when it is gone. */
export function signalProcess(pid: number, startTime: number, signal: NodeJS.Signals): boolean {
  if (!processAlive(pid, startTime)) return false;
  try {
    process.kill(pid, signal);
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
