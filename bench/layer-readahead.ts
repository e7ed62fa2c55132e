// `npm run bench layer-readahead`: does decompressing the next layer while the current one is written pay?
// buildRootfs from local gzip layers, with the default read-ahead against none (readAheadBytes 0), runs
// interleaved, on two three-layer images:
//   - Debian bookworm minbase (debootstrap, cached by the test fixture) split into three layers of similar
//     size: many small files, where the writer's own work dominates;
//   - three layers of large base64 files: little metadata, where decompression dominates.
// Prints medians, the ratio and each side's peak RSS (compiled builder in a child, as rootfs-build does); both sides must report the same content, and e2fsck -fn must pass on both.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../src/host/index.js';
import { READ_AHEAD_BYTES } from '../src/rootfs/flatten.js';
import { buildRootfs } from '../src/rootfs/index.js';
import { ensureDebianTree } from '../test/fixtures/debian-tree.js';
import { median, timeMs } from './_lib.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const runner = createRunner();
const sh = (script: string) => runner.run(['sh', '-c', script], { timeoutMs: 30 * 60_000 });
const root = await mkdtemp(join(tmpdir(), 'banger-bench-readahead-'));
const checkout = join(import.meta.dirname, '..');
const distDir = join(checkout, '.bench-dist-readahead');
await runner.run(['npx', 'tsc', '-p', 'tsconfig.build.json', '--outDir', distDir], {
  cwd: checkout,
  timeoutMs: 10 * 60_000,
});

/** Peak RSS (MiB) of one build in a child with the compiled builder. */
async function peakRssMiB(layers: string[], readAheadBytes: number): Promise<number> {
  const out = join(root, 'rss.ext4');
  const child = await runner.run(
    [
      process.execPath,
      join(import.meta.dirname, '_rootfs-rss.mjs'),
      join(distDir, 'rootfs', 'index.js'),
      out,
      ...layers,
    ],
    { env: { READ_AHEAD_BYTES: String(readAheadBytes) } },
  );
  await rm(out, { force: true });
  const { maxRssBytes } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { maxRssBytes: number };
  return maxRssBytes / 2 ** 20;
}

async function debianSplit(): Promise<string[]> {
  const tree = await ensureDebianTree();
  const tar = `tar --numeric-owner --xattrs --xattrs-include='*' -C '${tree}'`;
  const parts = [
    `${tar} -cf - ./usr/lib`,
    `${tar} -cf - ./usr/share ./usr/bin ./usr/sbin`,
    `${tar} --exclude=./usr/lib --exclude=./usr/share --exclude=./usr/bin --exclude=./usr/sbin -cf - .`,
  ];
  return Promise.all(
    parts.map(async (cmd, i) => {
      const out = join(root, `debian-${i}.tar.gz`);
      await sh(`${cmd} | gzip -6 > '${out}'`);
      return out;
    }),
  );
}

async function bigFiles(): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = join(root, `big-${i}`);
    await sh(
      `mkdir -p '${dir}/data' && for f in 1 2 3 4 5 6; do head -c 12M /dev/urandom | base64 > '${dir}/data/l${i}-$f'; done`,
    );
    const gz = join(root, `big-${i}.tar.gz`);
    await sh(`tar --numeric-owner -C '${dir}' -cf - . | gzip -6 > '${gz}' && rm -rf '${dir}'`);
    out.push(gz);
  }
  return out;
}

const fileLayer = (path: string) => ({ digest: path, open: async () => createReadStream(path) });

try {
  const cases = [
    { name: 'debian minbase in 3 layers (small files)', layers: await debianSplit() },
    { name: '3 layers of 6 × 16 MiB base64 files', layers: await bigFiles() },
  ];
  const rows: string[] = [];
  for (const c of cases) {
    const times = { on: [] as number[], off: [] as number[] };
    const reports = new Set<string>();
    for (let i = 0; i < RUNS; i++) {
      for (const side of ['off', 'on'] as const) {
        const out = join(root, 'out.ext4');
        let report = '';
        times[side].push(
          await timeMs(async () => {
            const built = await buildRootfs({
              layers: c.layers.map(fileLayer),
              output: out,
              sizeBytes: 1024 * 2 ** 20,
              readAheadBytes: side === 'on' ? READ_AHEAD_BYTES : 0,
            });
            report = JSON.stringify(built.report.layers);
          }),
        );
        if (i === 0) {
          reports.add(report);
          await runner.run(['e2fsck', '-fn', out]);
        }
        await rm(out, { force: true });
      }
    }
    if (reports.size !== 1) throw new Error(`${c.name}: the two sides read different layers`);
    const off = median(times.off) / 1000;
    const on = median(times.on) / 1000;
    const rss = `${(await peakRssMiB(c.layers, 0)).toFixed(0)} → ${(await peakRssMiB(c.layers, READ_AHEAD_BYTES)).toFixed(0)} MiB`;
    rows.push(
      `| ${c.name} | ${off.toFixed(2)} s | ${on.toFixed(2)} s | ${(on / off).toFixed(2)}× | ${rss} |`,
    );
  }
  console.log(`Medians of ${RUNS} interleaved runs; read-ahead ${READ_AHEAD_BYTES / 2 ** 20} MiB of tar.\n`);
  console.log('| image | one layer at a time (baseline) | next layer read ahead | ratio | peak RSS |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) console.log(row);
} finally {
  await rm(root, { recursive: true, force: true });
  await rm(distDir, { recursive: true, force: true });
}
