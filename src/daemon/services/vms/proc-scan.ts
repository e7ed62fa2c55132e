import { readdir, readFile } from 'node:fs/promises';
import { processStartTime } from '../../../host/index.js';

/**
 * Processes whose command line names a path inside `dir`. A VMM is spawned with its run dir in its
 * argv (sockets, console log), so this finds a VMM whose pid was never recorded because the daemon died
 * between spawning it and writing its handles. Reads /proc only; the caller signals through PrivOps.
 */
export async function processesUsing(dir: string): Promise<{ pid: number; startTime: number }[]> {
  const found: { pid: number; startTime: number }[] = [];
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.split('\0').some((arg) => arg.includes(prefix) || arg === dir)) continue;
    const startTime = processStartTime(pid);
    if (startTime !== undefined) found.push({ pid, startTime });
  }
  return found;
}
