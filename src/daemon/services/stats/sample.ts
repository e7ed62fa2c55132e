import { stat } from 'node:fs/promises';
import {
  CLOCK_TICKS_PER_SECOND,
  processRssBytes,
  readProcStat,
  systemUptimeSeconds,
} from '../../../host/index.js';
import { BangerError } from '../../../model/errors.js';
import type { VmStats } from '../../../model/vm-stats.js';
import type { LiveView } from '../vms/index.js';
import { vmPaths } from '../vms/index.js';
import type { TapCounterReader } from './tap-counters.js';

/** How long a sample waits for the guest's memory figures; a stuck agent costs the figures, not the sample. */
const GUEST_WAIT_MS = 5_000;

/** The CPU reading a sample keeps, so the next one of the same process can take the difference. */
export interface CpuMark {
  pid: number;
  startTime: number;
  cpuSeconds: number;
  /** performance.now() of the reading. */
  atMs: number;
}

export interface SampleDeps {
  vmsDir: string;
  readTap: TapCounterReader;
}

/**
 * Samples one running VM: CPU time and RSS of its VMM process (/proc), the disks' allocated bytes, its tap's
 * byte counters, and the guest's memory from its agent. `previous` (same process) makes the CPU share a
 * rate over the window since; without it the share is the average since the VMM started.
 */
export async function sampleVm(
  deps: SampleDeps,
  view: LiveView,
  previous?: CpuMark,
): Promise<{ stats: VmStats; mark: CpuMark }> {
  const { vm, pid, startTime } = view;
  const proc = readProcStat(pid);
  const rss = processRssBytes(pid);
  const atMs = performance.now();
  if (!proc || proc.startTime !== startTime || rss === undefined)
    throw new BangerError('not_running', `VM ${vm.name}'s VMM process is gone`);
  const cpuSeconds = proc.cpuTicks / CLOCK_TICKS_PER_SECOND;
  const uptimeSeconds = Math.max(0, systemUptimeSeconds() - startTime / CLOCK_TICKS_PER_SECOND);
  const same = previous && previous.pid === pid && previous.startTime === startTime;
  const windowSeconds = same ? (atMs - previous.atMs) / 1000 : uptimeSeconds;
  const cpuDelta = same ? cpuSeconds - previous.cpuSeconds : cpuSeconds;
  const percent = windowSeconds > 0 ? Math.max(0, (cpuDelta / windowSeconds) * 100) : 0;

  const [guest, disk, network] = await Promise.all([
    guestMemory(view),
    diskUsage(deps.vmsDir, view),
    deps.readTap(vm),
  ]);
  return {
    stats: {
      id: vm.id,
      name: vm.name,
      sampledAt: new Date().toISOString(),
      uptimeSeconds: round(uptimeSeconds),
      cpu: { seconds: round(cpuSeconds), percent: round(percent), windowSeconds: round(windowSeconds) },
      memory: { vmmRssBytes: rss, ...guest },
      disk,
      network,
      lastTouchedAt: vm.lastTouchedAt,
    },
    mark: { pid, startTime, cpuSeconds, atMs },
  };
}

const round = (n: number) => Math.round(n * 100) / 100;

async function guestMemory(
  view: LiveView,
): Promise<{ guestTotalBytes: number | null; guestAvailableBytes: number | null }> {
  const none = { guestTotalBytes: null, guestAvailableBytes: null };
  const gaveUp = new AbortController();
  const timer = setTimeout(() => gaveUp.abort(), GUEST_WAIT_MS);
  try {
    const health = await Promise.race([
      view.agent(gaveUp.signal).then((a) => a.health()),
      new Promise<undefined>((resolve) => gaveUp.signal.addEventListener('abort', () => resolve(undefined))),
    ]);
    // health() passed the agent reply schema (integers, capped) in src/guest.
    const memory = (health as { memory?: { totalKiB: number; availableKiB: number } } | undefined)?.memory;
    if (!memory || memory.totalKiB === 0) return none;
    return { guestTotalBytes: memory.totalKiB * 1024, guestAvailableBytes: memory.availableKiB * 1024 };
  } catch {
    return none;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Allocated bytes (st_blocks × 512: what the sparse files really take) of the work disk and of the root
 * disk's copy-on-write files, which are the VM's durable file identities other than the work disk (the
 * file of copy and reflink, dm-snapshot's COW file, the qcow2 overlay), whatever the strategy.
 */
async function diskUsage(vmsDir: string, view: LiveView): Promise<VmStats['disk']> {
  const paths = vmPaths(vmsDir, view.vm.id);
  const allocated = async (path: string) => {
    const st = await stat(path).catch(() => undefined);
    return st ? st.blocks * 512 : 0;
  };
  const rootFiles = view.vm.runtime.identities.flatMap((id) =>
    id.kind === 'file' &&
    id.path.startsWith(`${paths.dir}/`) &&
    !id.path.startsWith(`${paths.run}/`) &&
    id.path !== paths.workDisk
      ? [id.path]
      : [],
  );
  const root = (await Promise.all(rootFiles.map(allocated))).reduce((a, b) => a + b, 0);
  return { rootAllocatedBytes: root, workAllocatedBytes: await allocated(paths.workDisk) };
}
