// `banger vm run --rm IMAGE -- true` end to end (CLI -> daemon -> net + qcow2 + QEMU TCG -> agent exec ->
// delete) against a plain qemu-system-x86_64 boot of the same kernel, initramfs and root (a qcow2 overlay)
// to the same readiness signal (the agent ran `true`), alternating in one run. Then `vm create --no-start`
// for a 1 GiB and an 8 GiB image, through the CLI and as the bare RPC (the daemon's share): copy-on-write
// must not grow with the image (goal: <= 50 ms). Then `vm list` against `node -e 0` (goal: <= 1.8x). Boot to agent ready is compared
// on its own too: for banger the daemon's `VM ready` log line (VMM start to agent answering), for plain QEMU
// the spawn to the agent answering.
import { mkdir, readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { bangerVersion } from '../src/config/index.js';
import { createRunner } from '../src/host/index.js';
import { createRpcClient } from '../src/rpc/index.js';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import {
  buildGuestRoot,
  guestRootSource,
  registerImage,
  writeInstanceConfig,
} from '../test/fixtures/guest-root.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { median, plainQemuRun, probeBenchHost, timeMs } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const runner = createRunner();
const kernel = await ensureTestKernel();
const { host, qemuBin } = await probeBenchHost(runner);
const fx = createNetnsFixture(runner);
const ns = await fx.createNetns('bench');
const work = await fx.tempDir();
const inst = createInstance();

/** The daemon's last `VM ready` line: VMM start to the agent answering, in ms. */
async function lastBootMs(): Promise<number> {
  const log = await readFile(join(inst.home, 'state', 'bangerd.log'), 'utf8');
  const lines = log.split('\n').filter((l) => l.includes('"VM ready"'));
  const ready = JSON.parse(lines.at(-1) ?? '{}');
  const ms = ready.vmmToAgentMs;
  if (typeof ms !== 'number') throw new Error('no "VM ready" line with vmmToAgentMs in the daemon log');
  // Each start stage's duration: to the next stage's start, the last one to the start's end.
  const at = Object.entries((ready.stageAtMs ?? {}) as Record<string, number>).sort((a, b) => a[1] - b[1]);
  at.forEach(([name, t], i) => {
    stageMs[name] = [...(stageMs[name] ?? []), (at[i + 1]?.[1] ?? ready.totalMs) - t];
  });
  startTotalMs.push(ready.totalMs);
  return ms;
}

async function bangerRun(): Promise<number> {
  const t0 = performance.now();
  const r = await execa(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'banger'), 'vm', 'run', '--rm', 'alpine', '--', 'true'],
    {
      env: inst.env,
      reject: false,
    },
  );
  if (r.exitCode !== 0) throw new Error(`banger vm run failed: ${r.stderr}`);
  const ms = performance.now() - t0;
  bangerBootMs.push(await lastBootMs());
  return ms;
}

/** Plain QEMU's whole run (the boot to the agent is recorded in plainBootMs). */
async function plain(i: number, rootfs: string): Promise<number> {
  const r = await plainQemuRun({
    runner,
    qemuBin,
    tscKhz: host.tscKhz,
    kernel,
    rootfs,
    dir: join(work, `p${i}`),
  });
  plainBootMs.push(r.bootMs);
  return r.totalMs;
}

async function createNoStart(image: string): Promise<number> {
  const t0 = performance.now();
  const r = await execa(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'banger'), 'vm', 'create', '--no-start', '--image', image],
    {
      env: inst.env,
      reject: false,
    },
  );
  if (r.exitCode !== 0) throw new Error(`vm create failed: ${r.stderr}`);
  const ms = performance.now() - t0;
  await execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), 'vm', 'delete', r.stdout.trim()], {
    env: inst.env,
  });
  return ms;
}

/** The same create as the bare RPC call: what the daemon spends, without the CLI's start-up. */
async function createNoStartRpc(image: string): Promise<number> {
  const client = createRpcClient(inst.socketPath, bangerVersion());
  const t0 = performance.now();
  const { vm } = await client.call('vm.create', { image, noStart: true });
  const ms = performance.now() - t0;
  await client.call('vm.delete', { ref: vm.id });
  return ms;
}

const bangerCli = (args: string[]) =>
  execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], { env: inst.env });

const bangerMs: number[] = [];
/** Per start stage (network, disks, boot, agent, work-disk, files, ssh, ready), from the `VM ready` line. */
const stageMs: Record<string, number[]> = {};
const startTotalMs: number[] = [];
const bangerBootMs: number[] = [];
const plainBootMs: number[] = [];
const plainMs: number[] = [];
const create1: number[] = [];
const create8: number[] = [];
const rpcCreate1: number[] = [];
const rpcCreate8: number[] = [];
const nodeMs: number[] = [];
const listMs: number[] = [];
try {
  const rootfs = await buildGuestRoot(runner, work);
  const big1 = await buildGuestRoot(runner, join(work), '1G');
  const big8 = await buildGuestRoot(runner, join(work), '8G');
  await mkdir(join(inst.home, 'config'), { recursive: true });
  await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  writeInstanceConfig(inst.home, ns, fx.id.slice(6));
  const k = { kernelPath: kernel.kernelPath, initrdPath: kernel.initrdPath };
  registerImage(inst.home, { name: 'alpine', rootfsPath: rootfs, ...k });
  registerImage(inst.home, { name: 'alpine-1g', rootfsPath: big1, ...k });
  registerImage(inst.home, { name: 'alpine-8g', rootfsPath: big8, ...k });
  await bangerRun(); // warm-up: starts the daemon, probes the host, makes the bridge
  bangerBootMs.length = 0;
  startTotalMs.length = 0;
  for (const k of Object.keys(stageMs)) delete stageMs[k];
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate, so drift in host load hits both sides alike.
    if (i % 2) {
      bangerMs.push(await bangerRun());
      plainMs.push(await plain(i, rootfs));
    } else {
      plainMs.push(await plain(i, rootfs));
      bangerMs.push(await bangerRun());
    }
    create1.push(await createNoStart('alpine-1g'));
    create8.push(await createNoStart('alpine-8g'));
    rpcCreate1.push(await createNoStartRpc('alpine-1g'));
    rpcCreate8.push(await createNoStartRpc('alpine-8g'));
    for (let j = 0; j < 3; j++) {
      nodeMs.push(await timeMs(() => execa(process.execPath, ['-e', '0'])));
      listMs.push(await timeMs(() => bangerCli(['vm', 'list'])));
    }
  }
} finally {
  await execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), 'daemon', 'stop'], {
    env: inst.env,
    reject: false,
  });
  await inst.cleanup();
  await fx.cleanup();
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const base = median(plainMs);
console.log(
  `QEMU ${host.qemu?.version}, TCG, microvm, 1 vCPU, 256 MiB, ${(await guestRootSource()).flavour} userland + banger-agent (init shim), ${ROUNDS} rounds each\n`,
);
console.log('| path | median | min | max | ratio to plain | overhead |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [name, xs] of [
  ['plain qemu-system-x86_64: qcow2 overlay, boot, agent runs `true` (baseline)', plainMs],
  ['`banger vm run --rm alpine -- true` (CLI to exit, incl. tap/IP/work disk/delete)', bangerMs],
  ['boot to agent ready, plain QEMU (spawn to the agent answering; baseline of the next row)', plainBootMs],
  ['boot to agent ready, banger (VMM start to the agent answering, daemon log `VM ready`)', bangerBootMs],
] as const) {
  const b = xs === bangerBootMs ? median(plainBootMs) : xs === plainBootMs ? median(plainBootMs) : base;
  console.log(
    `| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${(median(xs) / b).toFixed(2)}× | ${(median(xs) - b).toFixed(0)} ms |`,
  );
}
console.log('\n| where `vm run` spends its time (daemon log; medians) | ms |');
console.log('| --- | --- |');
for (const [name, xs] of Object.entries(stageMs))
  console.log(`| start stage \`${name}\` | ${median(xs).toFixed(0)} |`);
console.log(`| the whole start (daemon) | ${median(startTotalMs).toFixed(0)} |`);
console.log(
  `| the rest: CLI start-up, admit, the command, delete (run minus start) | ${(median(bangerMs) - median(startTotalMs)).toFixed(0)} |`,
);
console.log(
  '\n| `vm create --no-start` (qcow2 root + 64 MiB work disk; goal <= 50 ms) | median | min | max |',
);
console.log('| --- | --- | --- | --- |');
for (const [name, xs] of [
  ['1 GiB image, CLI to exit', create1],
  ['8 GiB image, CLI to exit', create8],
  ['1 GiB image, the RPC alone (daemon side)', rpcCreate1],
  ['8 GiB image, the RPC alone (daemon side)', rpcCreate8],
] as const) {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log(`| ${name} | ${ms(median(xs))} | ${ms(Math.min(...xs))} | ${ms(Math.max(...xs))} |`);
}
const nodeBase = median(nodeMs);
console.log('\n| CLI call (goal: vm list <= 1.8x node -e 0) | median | ratio to node -e 0 |');
console.log('| --- | --- | --- |');
console.log(`| node -e 0 (baseline) | ${nodeBase.toFixed(0)} ms | 1.00× |`);
console.log(
  `| banger vm list (daemon up) | ${median(listMs).toFixed(0)} ms | ${(median(listMs) / nodeBase).toFixed(2)}× |`,
);
console.log(`\nhost load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`);
