import { closeSync, openSync, readFileSync, readlinkSync, readSync } from 'node:fs';

/**
 * Everything banger reads about a process from /proc, in one place. Readers never throw for a process
 * that is gone: they answer undefined, since a pid can vanish between any two reads.
 */

/** A VMM's argv is a few KiB; more than this is not one of ours, and a read is never unbounded. */
const CMDLINE_MAX_BYTES = 256 * 1024;

/**
 * Process CPU times and start times are in USER_HZ ticks, which the kernel fixes at 100 on x86_64 whatever
 * its internal HZ (sysconf(_SC_CLK_TCK)); banger runs on x86_64 hosts only.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/**
 * The fields of /proc/PID/stat banger uses: the state letter (field 3), user and system CPU time (fields 14
 * and 15, ticks) and the start time (field 22, ticks since boot).
 */
export function readProcStat(
  pid: number,
): { state: string; startTime: number; cpuTicks: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTime = Number(rest[19]);
  const cpuTicks = Number(rest[11]) + Number(rest[12]);
  if (!rest[0] || !Number.isInteger(startTime) || !Number.isInteger(cpuTicks)) return undefined;
  return { state: rest[0], startTime, cpuTicks };
}

/** Seconds since boot (/proc/uptime), the clock process start times count from. */
export function systemUptimeSeconds(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** A process's resident set size in bytes (`VmRSS:` of /proc/PID/status), or undefined when it is gone. */
export function processRssBytes(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * The start time of a process in clock ticks since boot, or undefined when it does not exist. A pid plus
 * its start time names one process for good: pids are reused.
 */
export function processStartTime(pid: number): number | undefined {
  return readProcStat(pid)?.startTime;
}

/** true when the process with this start time has exited: gone, its pid reused, or a zombie awaiting its parent. */
export function processExited(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  return !stat || stat.startTime !== startTime || stat.state === 'Z' || stat.state === 'X';
}

/** The command line as argv (read up to CMDLINE_MAX_BYTES), or undefined when the process is gone. */
export function processArgv(pid: number): string[] | undefined {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/cmdline`, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(CMDLINE_MAX_BYTES);
    let len = 0;
    for (;;) {
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      if (len === buf.length) break;
    }
    const args = buf.subarray(0, len).toString('utf8').split('\0');
    // A full buffer cut the last argument short: it is not an argument the process has.
    if (len === buf.length) args.pop();
    else if (args.at(-1) === '') args.pop();
    return args;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** The executable as the kernel names it (/proc/PID/exe), or undefined when unreadable or gone. */
export function processExe(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/** Real and effective uid (the `Uid:` line of /proc/PID/status), or undefined when the process is gone. */
export function processUids(pid: number): { real: number; effective: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
  return m ? { real: Number(m[1]), effective: Number(m[2]) } : undefined;
}

/**
 * What a process must be before banger signals it: the pid and start time it was recorded with, an
 * argument its argv holds whole (the VMM's control socket: it names this VM's run dir, so no other
 * program has it), and, once known, its executable. The uid is the signaller's, given by the checker.
 */
export interface ProcessProof {
  pid: number;
  startTime: number;
  arg: string;
  /** /proc/PID/exe when the VMM was recorded; absent for one found through its pidfile before that. */
  exe?: string;
}

export type ProofCheck = { result: 'match' } | { result: 'gone' } | { result: 'mismatch'; reason: string };

/**
 * Checks a live process against its proof. `gone` when the recorded process no longer runs (exited, a
 * zombie, or its pid reused: another start time); `mismatch` when a live process has the recorded pid and
 * start time but another owner, executable or argv, which only a damaged or forged record produces.
 */
export function checkProcessProof(proof: ProcessProof, uid: number): ProofCheck {
  if (processExited(proof.pid, proof.startTime)) return { result: 'gone' };
  const uids = processUids(proof.pid);
  if (!uids) return { result: 'gone' };
  if (uids.real !== uid || uids.effective !== uid)
    return { result: 'mismatch', reason: `it runs as uid ${uids.effective}, not ${uid}` };
  if (proof.exe !== undefined) {
    const exe = processExe(proof.pid);
    // The kernel marks a binary replaced on disk since exec (a package upgrade) with ' (deleted)'.
    if (exe !== proof.exe && exe !== `${proof.exe} (deleted)`)
      return { result: 'mismatch', reason: `its executable is ${exe ?? 'unreadable'}, not ${proof.exe}` };
  }
  const argv = processArgv(proof.pid);
  if (!argv) return { result: 'gone' };
  if (!argv.includes(proof.arg))
    return { result: 'mismatch', reason: `its argv has no argument ${JSON.stringify(proof.arg)}` };
  // Checked last: the reads above race with the process exiting and its pid being reused.
  if (processExited(proof.pid, proof.startTime)) return { result: 'gone' };
  return { result: 'match' };
}
