// `banger vm run --rm alpine -- true` restored from the image's warm template, against a plain
// qemu-system-x86_64 cold boot of the same kernel, initramfs and root (a qcow2 overlay) to the same readiness
// signal (the agent ran `true`), alternating in one run; banger's cold `vm run --cold` alongside for scale.
// Goal (issue 20): warm <= 0.35x plain QEMU's cold boot to the agent. Then where the warm path's time goes:
// the daemon's start stages (its `VM ready` log line) and the rest (CLI, admit, the command, delete).
import { mkdir, readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createRunner } from '../src/host/index.js';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import { buildGuestRoot, registerImage, writeInstanceConfig } from '../test/fixtures/guest-root.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { median, plainQemuRun, probeBenchHost } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const runner = createRunner();
const kernel = await ensureTestKernel();
const { host, qemuBin } = await probeBenchHost(runner);
const fx = createNetnsFixture(runner);
const ns = await fx.createNetns('bwarm');
const work = await fx.tempDir();
const inst = createInstance();

const banger = (args: string[]) =>
  execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], { env: inst.env, reject: false });

interface Ready {
  vmmToAgentMs: number;
  totalMs: number;
  stageAtMs: Record<string, number>;
}
/** The daemon's last `VM ready` line. */
async function lastReady(): Promise<Ready> {
  const log = await readFile(join(inst.home, 'state', 'bangerd.log'), 'utf8');
  return JSON.parse(
    log
      .split('\n')
      .filter((l) => l.includes('"VM ready"'))
      .at(-1) ?? '{}',
  ) as Ready;
}

const warmStages: Record<string, number[]> = {};
const warmStartMs: number[] = [];
async function run(cold: boolean): Promise<number> {
  const t0 = performance.now();
  const r = await banger(['vm', 'run', '--rm', ...(cold ? ['--cold'] : []), 'alpine', '--', 'true']);
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`banger vm run failed: ${r.stderr}`);
  const ready = await lastReady();
  const restored = 'identity' in (ready.stageAtMs ?? {});
  if (restored === cold) throw new Error(`a ${cold ? 'cold' : 'warm'} run ${cold ? 'restored' : 'booted'}`);
  if (!cold) {
    const at = Object.entries(ready.stageAtMs).sort((a, b) => a[1] - b[1]);
    at.forEach(([name, t], i) => {
      warmStages[name] = [...(warmStages[name] ?? []), (at[i + 1]?.[1] ?? ready.totalMs) - t];
    });
    warmStartMs.push(ready.totalMs);
  }
  return ms;
}

const plainBootMs: number[] = [];
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

/** Until the template exists and its throwaway VM is gone (made in the background after a cold run). */
async function templateReady(): Promise<void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const shown = JSON.parse((await banger(['image', 'show', 'alpine', '--json'])).stdout) as {
      warmTemplates: unknown[];
    };
    const vms = JSON.parse((await banger(['vm', 'list', '--json'])).stdout) as { createdBy?: string }[];
    if (shown.warmTemplates.length > 0 && vms.every((v) => v.createdBy !== 'banger-warm')) return;
    if (Date.now() > deadline) throw new Error('no warm template after 10 minutes');
    await new Promise((r) => setTimeout(r, 500));
  }
}

const warmMs: number[] = [];
const coldMs: number[] = [];
const plainMs: number[] = [];
try {
  const rootfs = await buildGuestRoot(runner, work);
  await mkdir(join(inst.home, 'config'), { recursive: true });
  await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  writeInstanceConfig(inst.home, ns, fx.id.slice(6), ['warm_templates = true']);
  registerImage(inst.home, {
    name: 'alpine',
    rootfsPath: rootfs,
    kernelPath: kernel.kernelPath,
    initrdPath: kernel.initrdPath,
  });
  const firstCold = performance.now();
  await run(true); // starts the daemon, probes the host, makes the bridge (--cold: no template yet)
  await banger(['vm', 'run', '--rm', 'alpine', '--', 'true']); // cold, and makes the template after
  await templateReady();
  console.log(`first runs and the template: ${((performance.now() - firstCold) / 1000).toFixed(1)} s`);
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate, so drift in host load hits every side alike.
    const order = i % 2 ? ['warm', 'plain', 'cold'] : ['plain', 'cold', 'warm'];
    for (const side of order) {
      if (side === 'warm') warmMs.push(await run(false));
      else if (side === 'cold') coldMs.push(await run(true));
      else plainMs.push(await plain(i, rootfs));
    }
  }
} finally {
  await banger(['daemon', 'stop']);
  await inst.cleanup();
  await fx.cleanup();
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const base = median(plainBootMs);
console.log(`\nQEMU ${host.qemu?.version}, TCG, microvm, 1 vCPU, 256 MiB, ${ROUNDS} rounds each\n`);
console.log('| path | median | min | max | ratio to plain boot to agent |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, xs] of [
  ['plain QEMU: spawn to the agent answering (baseline)', plainBootMs],
  ['plain QEMU: overlay, boot, agent runs `true`', plainMs],
  ['`banger vm run --rm --cold alpine -- true` (CLI to exit)', coldMs],
  ['`banger vm run --rm alpine -- true` from the warm template (CLI to exit; goal <= 0.35x)', warmMs],
] as const)
  console.log(
    `| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${(median(xs) / base).toFixed(2)}× |`,
  );
console.log('\n| where the warm `vm run` spends its time (daemon log; medians) | ms |');
console.log('| --- | --- |');
for (const [name, xs] of Object.entries(warmStages))
  console.log(`| start stage \`${name}\` | ${median(xs).toFixed(0)} |`);
console.log(`| the whole start (daemon) | ${median(warmStartMs).toFixed(0)} |`);
console.log(
  `| the rest: CLI start-up, admit (template lookup, digests), the command, delete | ${(median(warmMs) - median(warmStartMs)).toFixed(0)} |`,
);
console.log(`\nhost load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`);
