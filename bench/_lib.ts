// Helpers the benchmarks share (run.ts skips files starting with `_`, so this is not a benchmark itself).
import type { Runner } from '../src/host/index.js';
import { type HostProbe, probeHost } from '../src/vmm/index.js';

/** The median; the mean of the two middle values for an even count. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Wall time of one awaited call, in milliseconds. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** The host as the VMM layer sees it (QEMU path and version, TSC rate), and the QEMU binary to run. */
export async function probeBenchHost(runner: Runner): Promise<{ host: HostProbe; qemuBin: string }> {
  const host = await probeHost({
    config: { qemu_bin: 'qemu-system-x86_64', firecracker_bin: 'firecracker' },
    runner,
  });
  return { host, qemuBin: host.qemu?.path ?? 'qemu-system-x86_64' };
}
