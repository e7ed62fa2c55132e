// `vm fork` against a cold `vm run`, alternating in one run (issue 20): the baseline is
// `banger vm run --rm alpine -- true` (boot); the forks restore a snapshot of a running VM of the same image
// and size under QEMU TCG and run `true` in it (`vm fork base` then `vm exec`), and `vm fork VM` also takes the
// snapshot of the running VM first. Deleting the forks is not timed.
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createRunner } from '../src/host/index.js';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import { buildGuestRoot, registerImage, writeInstanceConfig } from '../test/fixtures/guest-root.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { median, probeBenchHost } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const runner = createRunner();
const kernel = await ensureTestKernel();
const { host } = await probeBenchHost(runner);
const fx = createNetnsFixture(runner);
const ns = await fx.createNetns('bsnap');
const work = await fx.tempDir();
const inst = createInstance();

async function banger(...args: string[]): Promise<string> {
  const r = await execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], {
    env: inst.env,
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`banger ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const cold: number[] = [];
const fromSnapshot: number[] = [];
const fromVm: number[] = [];
try {
  const rootfs = await buildGuestRoot(runner, work);
  await mkdir(join(inst.home, 'config'), { recursive: true });
  await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  writeInstanceConfig(inst.home, ns, fx.id.slice(6));
  registerImage(inst.home, {
    name: 'alpine',
    rootfsPath: rootfs,
    kernelPath: kernel.kernelPath,
    initrdPath: kernel.initrdPath,
  });
  await banger('vm', 'run', '--rm', 'alpine', '--', 'true'); // warm-up: daemon, host probe, bridge
  await banger('vm', 'create', '--name', 'src', '--image', 'alpine');
  await banger('vm', 'snapshot', 'src', 'base');
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate, so drift in host load hits every side alike.
    const sides: [number[], () => Promise<unknown>, string?][] = [
      [cold, () => banger('vm', 'run', '--rm', 'alpine', '--', 'true')],
      [
        fromSnapshot,
        async () => {
          await banger('vm', 'fork', 'base', '--name', `s${i}`);
          await banger('vm', 'exec', `s${i}`, '--', 'true');
        },
        `s${i}`,
      ],
      [
        fromVm,
        async () => {
          await banger('vm', 'fork', 'src', '--name', `v${i}`);
          await banger('vm', 'exec', `v${i}`, '--', 'true');
        },
        `v${i}`,
      ],
    ];
    if (i % 2) sides.reverse();
    for (const [xs, fn, vm] of sides) {
      xs.push(await timed(fn));
      if (vm) await banger('vm', 'delete', vm);
    }
  }
} finally {
  // `daemon stop` leaves running VMs running: the source VM is deleted first, or its QEMU outlives the bench.
  await execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), 'vm', 'delete', 'src'], {
    env: inst.env,
    reject: false,
  });
  await execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), 'daemon', 'stop'], {
    env: inst.env,
    reject: false,
  });
  await inst.cleanup();
  await fx.cleanup();
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const base = median(cold);
console.log(`QEMU ${host.qemu?.version}, TCG, microvm, test guest + banger-agent, ${ROUNDS} rounds each\n`);
console.log('| path | median | min | max | ratio to cold |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, xs] of [
  ['`vm run --rm alpine -- true`, cold boot (baseline)', cold],
  ['`vm fork base` + `vm exec fork -- true` (restore a snapshot)', fromSnapshot],
  ['`vm fork src` + `vm exec fork -- true` (snapshot the running VM, then restore)', fromVm],
] as const)
  console.log(
    `| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${(median(xs) / base).toFixed(2)}× |`,
  );
console.log(`\nhost load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`);
