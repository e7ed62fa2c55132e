// Host memory of forks (issue 20: "ten forks of one snapshot use less than 3x the host RSS of one VM"). One
// cold-booted VM is the baseline; then FORKS forks of the image's warm template, whose RAM is a file that
// each fork's QEMU maps copy-on-write (pages shared in the page cache); then, for comparison, FORKS forks of a
// `vm snapshot` of the running VM, whose RAM each QEMU reads from the migration stream into its own memory.
// Every guest has run `true` through the agent. Per QEMU: RSS, and PSS from /proc/PID/smaps_rollup (a page
// shared by N processes counts 1/N to each, so the PSS sum is what the group really holds).
import { mkdir, readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createRunner } from '../src/host/index.js';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import { buildGuestRoot, registerImage, writeInstanceConfig } from '../test/fixtures/guest-root.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { processesNaming } from '../test/fixtures/proc-scan.js';
import { median, probeBenchHost } from './_lib.js';

const FORKS = Number(process.env.BENCH_FORKS ?? 10);
const runner = createRunner();
const kernel = await ensureTestKernel();
const { host } = await probeBenchHost(runner);
const fx = createNetnsFixture(runner);
const ns = await fx.createNetns('bfmem');
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

interface Mem {
  rssKiB: number;
  pssKiB: number;
}
/** The QEMU of a VM (the one process whose argv names its directory) and its memory now. */
async function memOf(vm: string): Promise<Mem> {
  const shown = JSON.parse(await banger('vm', 'show', vm, '--json')) as { runtime: { vmDir?: string } };
  const procs = await processesNaming(shown.runtime.vmDir ?? '/nonexistent');
  if (procs.length !== 1 || !procs[0]) throw new Error(`VM ${vm}: ${procs.length} processes name its dir`);
  const rollup = await readFile(`/proc/${procs[0].pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  return { rssKiB: field('Rss'), pssKiB: field('Pss') };
}

/** Until the image's template exists and its throwaway VM is gone (made in the background after a cold run). */
async function templateName(): Promise<string> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const shown = JSON.parse(await banger('image', 'show', 'alpine', '--json')) as {
      warmTemplates: { name: string }[];
    };
    const vms = JSON.parse(await banger('vm', 'list', '--json')) as { createdBy?: string }[];
    const t = shown.warmTemplates[0];
    if (t && vms.every((v) => v.createdBy !== 'banger-warm')) return t.name;
    if (Date.now() > deadline) throw new Error('no warm template after 10 minutes');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `vm fork` (the restore, CLI to exit) of each fork, by kind: the RAM file against the stream, same run. */
const forkMs: Record<string, number[]> = {};
async function forks(from: string, prefix: string): Promise<Mem[]> {
  const names: string[] = [];
  for (let i = 0; i < FORKS; i++) {
    const t0 = performance.now();
    names.push(await banger('vm', 'fork', from, '--name', `${prefix}${i}`));
    forkMs[prefix] = [...(forkMs[prefix] ?? []), performance.now() - t0];
    await banger('vm', 'exec', `${prefix}${i}`, '--', 'true');
  }
  // Measured once all run: a page shared with a later fork is counted fairly in every PSS.
  const mem = await Promise.all(names.map(memOf));
  await banger('vm', 'delete', ...names);
  return mem;
}

let one: Mem | undefined;
let shared: Mem[] = [];
let stream: Mem[] = [];
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
  // A cold boot (the baseline VM, kept running); its template is made in the background after.
  await banger('vm', 'run', '-d', '--name', 'one', 'alpine');
  await banger('vm', 'exec', 'one', '--', 'true');
  const template = await templateName();
  one = await memOf('one');
  shared = await forks(template, 'fs');
  await banger('vm', 'snapshot', 'one', 'streamed');
  stream = await forks('streamed', 'fm');
} finally {
  await banger('vm', 'delete', 'one').catch(() => {});
  await banger('daemon', 'stop').catch(() => {});
  await inst.cleanup();
  await fx.cleanup();
}

const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
const sum = (xs: Mem[], k: keyof Mem) => xs.reduce((n, m) => n + m[k], 0);
const base = one as Mem;
console.log(`\nQEMU ${host.qemu?.version}, TCG, microvm, 1 vCPU, 256 MiB guests, ${FORKS} forks each\n`);
console.log('| what | RSS | PSS | RSS / one VM | PSS / one VM |');
console.log('| --- | --- | --- | --- | --- |');
console.log(`| one cold-booted VM (baseline) | ${mib(base.rssKiB)} | ${mib(base.pssKiB)} | 1.00× | 1.00× |`);
for (const [name, xs] of [
  [`${FORKS} forks of the warm template (RAM file mapped copy-on-write), summed`, shared],
  [`${FORKS} forks of a \`vm snapshot\` (RAM read from the stream), summed`, stream],
] as const)
  console.log(
    `| ${name} | ${mib(sum(xs, 'rssKiB'))} | ${mib(sum(xs, 'pssKiB'))} | ${(sum(xs, 'rssKiB') / base.rssKiB).toFixed(2)}× | ${(sum(xs, 'pssKiB') / base.rssKiB).toFixed(2)}× |`,
  );
console.log('\n| `vm fork` (restore, CLI to exit; medians, forks started one after another) | ms |');
console.log('| --- | --- |');
console.log(
  `| of the warm template (RAM file, ~70 KB device-state stream) | ${median(forkMs.fs ?? []).toFixed(0)} |`,
);
console.log(`| of a \`vm snapshot\` (whole RAM in the stream) | ${median(forkMs.fm ?? []).toFixed(0)} |`);
console.log(
  `\ngoal: ${FORKS} forks < 3× one VM's RSS; the PSS sum is the fair measure of shared pages (the last column divides it by one VM's RSS).`,
);
console.log(`host load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`);
