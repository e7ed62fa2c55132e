// Time from "start a VM" to the guest's init printing its marker on the console, under QEMU TCG:
// through the QEMU driver (start() + console log) against a plain qemu-system-x86_64 command line with
// the same machine, devices and kernel reading the serial port from a pipe, alternating in one run.
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../src/host/index.js';
import { createQemuVmm } from '../src/vmm/index.js';
import {
  buildBusyboxRoot,
  busyboxLaunchSpec,
  GUEST_BOOT_MARKER,
  GUEST_CMDLINE,
} from '../test/fixtures/busybox-guest.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { median, probeBenchHost } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
/** How long start() itself took (QEMU up, QMP handshake done), per driver round. */
const startReturnMs: number[] = [];
const GUARD_MS = 120_000;
const runner = createRunner();
const kernel = await ensureTestKernel();
const { host, qemuBin } = await probeBenchHost(runner);
const vmm = createQemuVmm({ runner, qemuBin, vhostVsock: false, tscKhz: host.tscKhz });
const work = await mkdtemp(join(tmpdir(), 'bgr-bench-'));
const base = await buildBusyboxRoot(runner, work);

async function freshRoot(name: string): Promise<string> {
  const p = join(work, `${name}.ext4`);
  await copyFile(base, p);
  return p;
}

async function viaDriver(i: number): Promise<number> {
  const root = await freshRoot(`d${i}`);
  const t0 = performance.now();
  const vm = await vmm.start(
    busyboxLaunchSpec({ name: `d${i}`, runDir: join(work, `d${i}`), kernel, rootPath: root }),
  );
  startReturnMs.push(performance.now() - t0);
  try {
    for (;;) {
      if ((await readFile(vm.consoleLogPath, 'utf8')).includes(GUEST_BOOT_MARKER))
        return performance.now() - t0;
      if (performance.now() - t0 > GUARD_MS) throw new Error('driver boot never showed the marker');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await vm.kill();
  }
}

async function plain(i: number): Promise<number> {
  const root = await freshRoot(`p${i}`);
  const t0 = performance.now();
  const child = runner.spawn(
    [
      qemuBin,
      ...['-M', 'microvm,accel=tcg,acpi=on,rtc=on,isa-serial=on', '-cpu', 'max', '-smp', '1', '-m', '256'],
      ...['-display', 'none', '-nodefaults', '-no-user-config', '-no-reboot', '-serial', 'stdio'],
      ...['-kernel', kernel.kernelPath, '-initrd', kernel.initrdPath],
      ...['-append', `${GUEST_CMDLINE} tsc_early_khz=${host.tscKhz}`],
      ...['-drive', `file=${root},if=none,id=d0,format=raw`, '-device', 'virtio-blk-device,drive=d0'],
      ...[
        '-device',
        'virtio-serial-device',
        '-chardev',
        `socket,id=a0,path=${join(work, `p${i}.sock`)},server=on,wait=off`,
      ],
      ...['-device', 'virtserialport,chardev=a0,name=org.banger.agent', '-device', 'virtio-rng-device'],
    ],
    { pipe: true },
  );
  child.stdin?.end();
  const exited = new Promise((r) => child.once('exit', r));
  try {
    return await new Promise<number>((resolve, reject) => {
      let out = '';
      const guard = setTimeout(() => reject(new Error('plain boot never showed the marker')), GUARD_MS);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString('utf8');
        if (out.includes(GUEST_BOOT_MARKER)) {
          clearTimeout(guard);
          resolve(performance.now() - t0);
        }
      });
      child.stderr?.resume();
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

const driverMs: number[] = [];
const plainMs: number[] = [];
try {
  // Alternate, so drift in host load hits both sides alike.
  for (let i = 0; i < ROUNDS; i++) {
    if (i % 2) {
      driverMs.push(await viaDriver(i));
      plainMs.push(await plain(i));
    } else {
      plainMs.push(await plain(i));
      driverMs.push(await viaDriver(i));
    }
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
const base0 = median(plainMs);
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(
  `QEMU ${host.qemu?.version}, TCG, microvm, 1 vCPU, 256 MiB, ${ROUNDS} rounds each, start -> init marker on console\n`,
);
console.log('| path | median | min | max | ratio to plain |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, xs] of [
  ['plain qemu-system-x86_64 (baseline)', plainMs],
  ['QemuVmm.start() + console log', driverMs],
] as const)
  console.log(
    `| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${(median(xs) / base0).toFixed(2)}× |`,
  );
console.log(
  `\nstart() itself resolves (QEMU up, QMP handshake done) after ${median(startReturnMs).toFixed(0)} ms (median); host load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`,
);
