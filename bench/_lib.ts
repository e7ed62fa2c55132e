// Helpers the benchmarks share (run.ts skips files starting with `_`, so this is not a benchmark itself).
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { GUEST_INIT_SHIM_PATH, waitForAgent } from '../src/guest/index.js';
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

/**
 * Plain QEMU, the baseline banger's boots are measured against: a qcow2 overlay over `rootfs` in `dir`, a TCG
 * boot of the test kernel with the agent on virtio-serial, then `true` through the agent. `bootMs` is spawn
 * to the agent answering; `totalMs` includes the overlay and the command. `dir` is removed after.
 */
export async function plainQemuRun(opts: {
  runner: Runner;
  qemuBin: string;
  tscKhz: number | undefined;
  kernel: { kernelPath: string; initrdPath: string };
  rootfs: string;
  dir: string;
}): Promise<{ totalMs: number; bootMs: number }> {
  const { runner, kernel, dir } = opts;
  await mkdir(dir);
  const t0 = performance.now();
  const overlay = join(dir, 'root.qcow2');
  await runner.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', opts.rootfs, overlay]);
  const sock = join(dir, 'agent.sock');
  const cmdline = `console=ttyS0 root=/dev/vda rw panic=-1 init=${GUEST_INIT_SHIM_PATH} tsc_early_khz=${opts.tscKhz}`;
  const spawnedAt = performance.now();
  const child = runner.spawn(
    [
      opts.qemuBin,
      ...['-M', 'microvm,accel=tcg,acpi=on,rtc=on,isa-serial=on', '-cpu', 'max', '-smp', '1', '-m', '256'],
      ...['-display', 'none', '-nodefaults', '-no-user-config', '-no-reboot', '-serial', 'stdio'],
      ...['-kernel', kernel.kernelPath, '-initrd', kernel.initrdPath, '-append', cmdline],
      ...['-drive', `file=${overlay},if=none,id=d0,format=qcow2`, '-device', 'virtio-blk-device,drive=d0'],
      ...['-device', 'virtio-serial-device', '-chardev', `socket,id=a0,path=${sock},server=on,wait=off`],
      ...['-device', 'virtserialport,chardev=a0,name=org.banger.agent', '-device', 'virtio-rng-device'],
    ],
    { pipe: true },
  );
  child.stdin?.end();
  child.stdout?.resume();
  child.stderr?.resume();
  const exited = new Promise((r) => child.once('exit', r));
  try {
    const agent = await waitForAgent({ kind: 'virtio-serial', socketPath: sock }, { timeoutMs: 120_000 });
    const bootMs = performance.now() - spawnedAt;
    const sink = new PassThrough().resume();
    const res = await agent.exec({ argv: ['true'] }, { stdout: sink, stderr: sink }).wait();
    agent.close();
    if (res.exitCode !== 0) throw new Error('true failed in the plain guest');
    return { totalMs: performance.now() - t0, bootMs };
  } finally {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
}
