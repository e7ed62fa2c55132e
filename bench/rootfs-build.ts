// `npm run bench rootfs-build`: OCI layers -> finished ext4. banger's buildRootfs against the baseline
// (`umoci unpack --rootless` + `mkfs.ext4 -d`, what the e2e notes measured), and against the limit (gunzip of
// the layers to /dev/null plus `mkfs.ext4 -d` of a tree already on disk). Runs are interleaved; medians.
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRunner } from '../src/host/index.js';
import { buildRootfs } from '../src/rootfs/index.js';
import { ALPINE_TARBALL } from '../test/fixtures/shared.js';
import { debianLayers } from './_debian.js';

const RUNS = 5;
const ALPINE = ALPINE_TARBALL;

const runner = createRunner();
const sh = (script: string) => runner.run(['sh', '-c', script], { timeoutMs: 30 * 60_000 });
const root = await mkdtemp(join(tmpdir(), 'banger-bench-rootfs-'));

interface Case {
  name: string;
  /** gzip layers, oldest first */
  layers: string[];
  layout: string;
  /** The flattened tree, as umoci unpacks it, for the limit's mkfs. */
  tree: string;
  sizeBytes: number;
}

const fileLayer = (path: string) => ({ digest: path, open: async () => createReadStream(path) });

async function prepare(name: string, layers: string[]): Promise<Case> {
  const dir = join(root, name);
  await mkdir(dir);
  const layout = join(dir, 'oci');
  await sh(`umoci init --layout '${layout}' && umoci new --image '${layout}:t'`);
  for (const [i, gz] of layers.entries()) {
    const tar = join(dir, `layer${i}.tar`);
    await sh(`gzip -dc '${gz}' > '${tar}'`);
    await runner.run(['umoci', 'raw', 'add-layer', '--image', `${layout}:t`, tar]);
    await rm(tar);
  }
  const bundle = join(dir, 'bundle');
  await runner.run(['umoci', 'unpack', '--rootless', '--image', `${layout}:t`, bundle]);
  // Same image size for every method: what banger picks for this content.
  const probe = await buildRootfs({
    layers: layers.map(fileLayer),
    output: join(dir, 'probe.ext4'),
  });
  await rm(join(dir, 'probe.ext4'));
  return { name, layers, layout, tree: join(bundle, 'rootfs'), sizeBytes: probe.sizeBytes };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

const BASELINE = 'umoci + mkfs';
const LIMIT = 'limit';
const methods: Record<string, (c: Case, out: string) => Promise<unknown>> = {
  banger: (c, out) =>
    buildRootfs({
      layers: c.layers.map(fileLayer),
      output: out,
      sizeBytes: c.sizeBytes,
    }),
  [BASELINE]: async (c, out) => {
    const bundle = join(root, 'bundle');
    await runner.run(['umoci', 'unpack', '--rootless', '--image', `${c.layout}:t`, bundle]);
    await sh(
      `truncate -s ${c.sizeBytes} '${out}' && mkfs.ext4 -q -F -E root_owner=0:0 -d '${bundle}/rootfs' '${out}'`,
    );
    await rm(bundle, { recursive: true, force: true });
  },
  [LIMIT]: async (c, out) => {
    for (const gz of c.layers) await sh(`gzip -dc '${gz}' > /dev/null`);
    await sh(
      `truncate -s ${c.sizeBytes} '${out}' && mkfs.ext4 -q -F -E root_owner=0:0 -d '${c.tree}' '${out}'`,
    );
  },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const cases = [await prepare('alpine 3.20 amd64 (1 layer)', [ALPINE])];
  try {
    cases.push(await prepare('debian bookworm minbase (2 layers)', await debianLayers(root)));
  } catch (err) {
    console.error(`debian case skipped: debootstrap failed: ${(err as Error).message.slice(0, 200)}`);
  }
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
    const base = median(times[BASELINE]!);
    const limit = median(times[LIMIT]!);
    rows.push(
      `| ${c.name} | ${b.toFixed(2)} s | ${base.toFixed(2)} s | ${(b / base).toFixed(2)}× | ${limit.toFixed(2)} s | ${(b / limit).toFixed(2)}× |`,
    );
  }
  console.log(`Layers (gzip) -> finished, checked ext4; median of ${RUNS} interleaved runs each.\n`);
  console.log(
    '| image | banger | umoci unpack --rootless + mkfs.ext4 -d | banger / baseline | limit (gunzip + mkfs of a ready tree) | banger / limit |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
} finally {
  await rm(root, { recursive: true, force: true });
}
