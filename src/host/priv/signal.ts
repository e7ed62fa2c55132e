import { readFileSync } from 'node:fs';
import { operationFailed } from '../../model/errors.js';
import type { AllowedSignal } from './validate.js';

/**
 * The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined when
 * the process does not exist. A pid plus its start time names one process for good: pids are reused.
 */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(rest[19]);
  return Number.isFinite(start) ? start : undefined;
}

export function signalPid(pid: number, startTime: number, signal: AllowedSignal): 'signalled' | 'gone' {
  if (processStartTime(pid) !== startTime) return 'gone';
  try {
    process.kill(pid, signal);
    return 'signalled';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
    throw operationFailed(`could not send ${signal} to pid ${pid}`, { cause: err });
  }
}

/** true when the process with this start time has exited (gone, or a zombie awaiting its parent). */
export function processGone(pid: number, startTime: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return true;
  }
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[19]) !== startTime || rest[0] === 'Z' || rest[0] === 'X';
}
