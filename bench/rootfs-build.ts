// `npm run bench rootfs-build`: OCI layer -> finished ext4. banger's buildRootfs against the baseline the
// original's docs use (`umoci unpack --rootless` + `mkfs.ext4 -d`), and against the limit (gunzip of the
// layer to /dev/null plus `mkfs.ext4 -d` of a ready tree). Runs are interleaved; medians of RUNS each.
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRunner } from '../src/host/index.js';
import { buildRootfs } from '../src/rootfs/index.js';

const RUNS = 5;
const ALPINE = '/work/shared/testdata/alpine-minirootfs-3.20.3-x86_64.tar.gz';
// A Debian-sized layer (~290 MB, thousands of files, setuid, hardlinks) made from this Debian host's own tree.
const HOST_TREE = [
  'etc',
  'usr/sbin',
  'usr/lib/python3',
  'usr/share/perl',
  'usr/share/zoneinfo',
  'usr/lib/x86_64-linux-gnu/perl',
  'usr/share/doc',
];

const runner = createRunner();
const sh = (script: string) => runner.run(['sh', '-c', script], { timeoutMs: 30 * 60_000 });
const root = await mkdtemp(join(tmpdir(), 'banger-bench-rootfs-'));

interface Case {
  name: string;
  layerGz: string;
  layout: string;
  tree: string;
  sizeBytes: number;
}

async function prepare(name: string, layerGz: string): Promise<Case> {
  const dir = join(root, name);
  await mkdir(dir);
  const tar = join(dir, 'layer.tar');
  await sh(`gzip -dc '${layerGz}' > '${tar}'`);
  const layout = join(dir, 'oci');
  await sh(
    `umoci init --layout '${layout}' && umoci new --image '${layout}:t' && umoci raw add-layer --image '${layout}:t' '${tar}'`,
  );
  const tree = join(dir, 'tree');
  await mkdir(tree);
  await runner.run(['tar', '-x', '-p', '--numeric-owner', '-f', tar, '-C', tree]);
  await rm(tar);
  // Same image size for every method: what banger picks for this content.
  const probe = await buildRootfs({
    layers: [fileLayer(layerGz)],
    output: join(dir, 'probe.ext4'),
    workDir: join(dir, 'w'),
  });
  await rm(join(dir, 'probe.ext4'));
  return { name, layerGz, layout, tree, sizeBytes: probe.sizeBytes };
}

function fileLayer(path: string) {
  return { digest: path, open: async () => createReadStream(path) };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

const methods: Record<string, (c: Case, out: string) => Promise<unknown>> = {
  banger: (c, out) =>
    buildRootfs({
      layers: [fileLayer(c.layerGz)],
      output: out,
      workDir: join(root, 'work'),
      sizeBytes: c.sizeBytes,
    }),
  'umoci + mkfs': async (c, out) => {
    const bundle = join(root, 'bundle');
    await runner.run(['umoci', 'unpack', '--rootless', '--image', `${c.layout}:t`, bundle]);
    await sh(
      `truncate -s ${c.sizeBytes} '${out}' && mkfs.ext4 -q -F -E root_owner=0:0 -d '${bundle}/rootfs' '${out}'`,
    );
    await rm(bundle, { recursive: true, force: true });
  },
  'limit (gunzip + mkfs of ready tree)': async (c, out) => {
    await sh(`gzip -dc '${c.layerGz}' > /dev/null`);
    await sh(
      `truncate -s ${c.sizeBytes} '${out}' && mkfs.ext4 -q -F -E root_owner=0:0 -d '${c.tree}' '${out}'`,
    );
  },
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

try {
  const hostGz = join(root, 'host-tree.tar.gz');
  await sh(`tar --numeric-owner -C / -cf - ${HOST_TREE.join(' ')} 2>/dev/null | gzip -6 > '${hostGz}'`);
  const cases = [await prepare('alpine-3.20-amd64', ALPINE), await prepare('debian-host-tree', hostGz)];
  const rows: string[] = [];
  for (const c of cases) {
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(methods).map((m) => [m, []]));
    for (let i = 0; i < RUNS; i++) {
      for (const [name, fn] of Object.entries(methods)) {
        const out = join(root, 'out.ext4');
        times[name]!.push(await timed(() => fn(c, out)));
        await rm(out, { force: true });
      }
    }
    const b = median(times.banger!);
    const base = median(times['umoci + mkfs']!);
    const limit = median(times['limit (gunzip + mkfs of ready tree)']!);
    rows.push(
      `| ${c.name} | ${b.toFixed(2)} s | ${base.toFixed(2)} s | ${(b / base).toFixed(2)}× | ${limit.toFixed(2)} s | ${(b / limit).toFixed(2)}× |`,
    );
  }
  console.log(`Layer (gzip) -> finished ext4, median of ${RUNS} runs each, interleaved.\n`);
  console.log(
    '| image | banger | umoci unpack --rootless + mkfs.ext4 -d | banger / baseline | limit | banger / limit |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
} finally {
  await rm(root, { recursive: true, force: true });
}
