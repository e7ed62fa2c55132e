// `vm create --no-start` alone (no boots, so it runs in seconds where bench/vm-run.ts takes minutes): a 1 GiB
// and an 8 GiB image, through the CLI and as the bare RPC (the daemon's share), alternating, each VM deleted
// after. What create does must not grow with the image (goal: <= 50 ms); `node -e 0` in the same run is the
// floor any CLI call pays.
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { bangerVersion } from '../src/config/index.js';
import { createRunner } from '../src/host/index.js';
import { createRpcClient } from '../src/rpc/index.js';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import { buildGuestRoot, registerImage, writeInstanceConfig } from '../test/fixtures/guest-root.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { median, timeMs } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const runner = createRunner();
const kernel = await ensureTestKernel();
const fx = createNetnsFixture(runner);
const ns = await fx.createNetns('bcreate');
const work = await fx.tempDir();
const inst = createInstance();
const banger = (args: string[]) =>
  execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], { env: inst.env });

const rows: Record<string, number[]> = {};
const add = (name: string, ms: number) => {
  rows[name] = [...(rows[name] ?? []), ms];
};
try {
  const big1 = await buildGuestRoot(runner, work, '1G');
  const big8 = await buildGuestRoot(runner, work, '8G');
  await mkdir(join(inst.home, 'config'), { recursive: true });
  await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  writeInstanceConfig(inst.home, ns, fx.id.slice(6));
  const k = { kernelPath: kernel.kernelPath, initrdPath: kernel.initrdPath };
  registerImage(inst.home, { name: 'alpine-1g', rootfsPath: big1, ...k });
  registerImage(inst.home, { name: 'alpine-8g', rootfsPath: big8, ...k });
  const client = createRpcClient(inst.socketPath, bangerVersion());
  // Warm-up: starts the daemon, probes the host, makes each image's work-disk template.
  for (const image of ['alpine-1g', 'alpine-8g']) {
    const r = await banger(['vm', 'create', '--no-start', '--image', image]);
    await banger(['vm', 'delete', r.stdout.trim()]);
  }
  for (let i = 0; i < ROUNDS; i++) {
    add('node -e 0', await timeMs(() => execa(process.execPath, ['-e', '0'])));
    for (const [image, label] of [
      ['alpine-1g', '1 GiB'],
      ['alpine-8g', '8 GiB'],
    ] as const) {
      let name = '';
      add(
        `${label} image, CLI to exit`,
        await timeMs(async () => {
          name = (await banger(['vm', 'create', '--no-start', '--image', image])).stdout.trim();
        }),
      );
      await banger(['vm', 'delete', name]);
      let id = '';
      add(
        `${label} image, the RPC alone (daemon side)`,
        await timeMs(async () => {
          id = (await client.call('vm.create', { image, noStart: true })).vm.id;
        }),
      );
      await client.call('vm.delete', { ref: id });
    }
  }
} finally {
  await banger(['daemon', 'stop']).catch(() => {});
  await inst.cleanup();
  await fx.cleanup();
}

const base = median(rows['node -e 0'] ?? []);
console.log(`\n\`vm create --no-start\` (qcow2 root + work disk), medians of ${ROUNDS}; goal <= 50 ms\n`);
console.log('| call | median | min | max |');
console.log('|---|---:|---:|---:|');
for (const [name, xs] of Object.entries(rows))
  console.log(
    `| ${name} | ${median(xs).toFixed(0)} ms | ${Math.min(...xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`,
  );
console.log(
  `\nnode -e 0 = ${base.toFixed(0)} ms; host load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`,
);
