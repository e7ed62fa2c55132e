// `npm run bench rootfs-build`: OCI layers -> finished ext4, every side measured in the same run, medians of
// interleaved runs, on the Alpine 3.20 minirootfs (../shared/testdata) and a debootstrap Debian bookworm
// minbase in two layers (whiteouts and an opaque dir in the second):
//   1. image pull, cold blob cache, loopback registry: banger (pull + buildRootfs, e2fsck included) against
//      `skopeo copy` + `umoci unpack --rootless` + `mkfs.ext4 -d`;
//   2. conversion alone (buildRootfs from local layer files) against the limit: decompressing the layers to
//      /dev/null plus writing the image's allocated bytes once (`dd`); and the share `e2fsck -fn` would take;
//   3. import of a rootfs tarball (buildRootfs on the one tarball) against `tar -x` + `mkfs.ext4 -d`;
//   4. peak RSS of one build, against 150 MiB + 300 bytes per entry.
// skopeo and umoci come from Debian's archive (`apt-get install -y skopeo umoci`); without them, or without
// a registry, the bench says so and fails.
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../src/host/index.js';
import { createOciPuller } from '../src/oci/index.js';
import { buildRootfs } from '../src/rootfs/index.js';
import { registryUnavailable, startRegistry } from '../test/fixtures/registry.js';
import { ALPINE_TARBALL } from '../test/fixtures/shared.js';
import { debianLayers } from './_debian.js';
import { median, timeMs } from './_lib.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const runner = createRunner();
const sh = (script: string) => runner.run(['sh', '-c', script], { timeoutMs: 30 * 60_000 });
const config = { insecure_registries: [], registry_ca_files: [], registry_auths: {} };

const missing: string[] = [];
for (const tool of ['skopeo', 'umoci', 'mkfs.ext4', 'e2fsck']) {
  if ((await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true })).exitCode !== 0)
    missing.push(tool);
}
const noRegistry = await registryUnavailable();
if (missing.length > 0 || noRegistry) {
  process.stderr.write(
    `rootfs-build cannot run: ${missing.length ? `missing ${missing.join(', ')} (apt-get install -y skopeo umoci e2fsprogs)` : ''}${noRegistry ?? ''}\n`,
  );
  process.exit(1);
}

interface Case {
  name: string;
  /** gzip layers, oldest first */
  layers: string[];
  ref: string;
  sizeBytes: number;
  /** Allocated bytes of banger's image: what the limit's dd writes. */
  imageBytes: number;
}

// The RSS child runs the compiled builder; compiled here (inside the checkout, so node_modules resolve).
const distDir = join(import.meta.dirname, '..', '.bench-dist');
await runner.run(['npx', 'tsc', '-p', 'tsconfig.build.json', '--outDir', distDir], {
  cwd: join(import.meta.dirname, '..'),
  timeoutMs: 10 * 60_000,
});

const fileLayer = (path: string) => ({ digest: path, open: async () => createReadStream(path) });
const root = await mkdtemp(join(tmpdir(), 'banger-bench-rootfs-'));
const reg = await startRegistry();

async function prepare(name: string, tag: string, layers: string[]): Promise<Case> {
  const [first, ...more] = layers;
  await reg.pushImage(tag, [{ tarball: first!, moreLayers: more, architecture: 'amd64' }]);
  const probe = join(root, 'probe.ext4');
  const built = await buildRootfs({ layers: layers.map(fileLayer), output: probe });
  const imageBytes = (await stat(probe)).blocks * 512;
  await rm(probe);
  return { name, layers, ref: `${reg.host}/${tag}`, sizeBytes: built.sizeBytes, imageBytes };
}

/** Same image size for every side: what banger picks for this content. */
const mkfs = (c: Case, tree: string, out: string) =>
  sh(`truncate -s ${c.sizeBytes} '${out}' && mkfs.ext4 -q -F -E root_owner=0:0 -d '${tree}' '${out}'`);

const sides = {
  pull: async (c: Case, out: string) => {
    const cache = await mkdtemp(join(root, 'cache-'));
    const puller = createOciPuller({ cacheDir: cache, config });
    try {
      const pulled = await puller.pull(c.ref);
      try {
        await buildRootfs({ layers: pulled.layers, output: out, sizeBytes: c.sizeBytes });
      } finally {
        await pulled.release();
      }
    } finally {
      await puller.close();
      await rm(cache, { recursive: true, force: true });
    }
  },
  pullBaseline: async (c: Case, out: string) => {
    const work = await mkdtemp(join(root, 'skopeo-'));
    try {
      await runner.run([
        'skopeo',
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        `docker://${c.ref}`,
        `oci:${work}/oci:t`,
      ]);
      await runner.run(['umoci', 'unpack', '--rootless', '--image', `${work}/oci:t`, `${work}/bundle`]);
      await mkfs(c, `${work}/bundle/rootfs`, out);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
  convert: async (c: Case, out: string) => {
    const build = await timeMs(() =>
      buildRootfs({ layers: c.layers.map(fileLayer), output: out, sizeBytes: c.sizeBytes }),
    );
    // What `e2fsck -fn` would add to the build (the product keeps it only while it is under 10 %); outside
    // the timed side, and it must pass.
    const check = await timeMs(() => runner.run(['e2fsck', '-fn', out]));
    fsckShare.get(c)!.push(check / (build + check));
  },
  limit: async (c: Case, out: string) => {
    for (const gz of c.layers) await sh(`gzip -dc '${gz}' > /dev/null`);
    await sh(`dd if=/dev/zero of='${out}' bs=1M count=${Math.ceil(c.imageBytes / 2 ** 20)} status=none`);
  },
  import: async (c: Case, out: string) => {
    await buildRootfs({ layers: [fileLayer(c.layers[0]!)], output: out, sizeBytes: c.sizeBytes });
  },
  importBaseline: async (c: Case, out: string) => {
    const tree = join(root, 'tree');
    await mkdir(tree);
    try {
      await runner.run(['tar', '-xpzf', c.layers[0]!, '--numeric-owner', '-C', tree]);
      await mkfs(c, tree, out);
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  },
};
type Side = keyof typeof sides;
const fsckShare = new Map<Case, number[]>();

try {
  const cases = [await prepare('alpine 3.20 (1 layer)', 'alpine:bench', [ALPINE_TARBALL])];
  cases.push(await prepare('debian bookworm minbase (2 layers)', 'debian:bench', await debianLayers(root)));
  const table: { c: Case; t: Record<Side, number>; rss: { maxRssBytes: number; entries: number } }[] = [];
  for (const c of cases) {
    fsckShare.set(c, []);
    const times = Object.fromEntries(Object.keys(sides).map((s) => [s, [] as number[]])) as Record<
      Side,
      number[]
    >;
    for (let i = 0; i < RUNS; i++) {
      for (const [name, fn] of Object.entries(sides) as [
        Side,
        (c: Case, out: string) => Promise<unknown>,
      ][]) {
        const out = join(root, 'out.ext4');
        times[name].push(await timeMs(() => fn(c, out)));
        await rm(out, { force: true });
      }
    }
    const rssOut = join(root, 'rss.ext4');
    const child = await runner.run([
      process.execPath,
      join(import.meta.dirname, '_rootfs-rss.mjs'),
      join(distDir, 'rootfs', 'index.js'),
      rssOut,
      ...c.layers,
    ]);
    await rm(rssOut, { force: true });
    const rss = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
      maxRssBytes: number;
      entries: number;
    };
    const t = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v) / 1000])) as Record<
      Side,
      number
    >;
    table.push({ c, t, rss });
  }
  const s = (x: number) => `${x.toFixed(2)} s`;
  const r = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  console.log(`Medians of ${RUNS} interleaved runs; same image size on every side.\n`);
  console.log(
    '| image | banger pull (cold cache) | skopeo + umoci --rootless + mkfs.ext4 -d | ratio (goal ≤ 0.8) |',
  );
  console.log('|---|---:|---:|---:|');
  for (const { c, t } of table)
    console.log(`| ${c.name} | ${s(t.pull)} | ${s(t.pullBaseline)} | ${r(t.pull, t.pullBaseline)} |`);
  console.log(
    '\n| image | conversion (buildRootfs) | limit: gunzip to /dev/null + dd of the image bytes | ratio (goal ≤ 1.5) | e2fsck -fn share if it ran in the build |',
  );
  console.log('|---|---:|---:|---:|---:|');
  for (const { c, t } of table)
    console.log(
      `| ${c.name} | ${s(t.convert)} | ${s(t.limit)} (${(c.imageBytes / 2 ** 20).toFixed(0)} MiB) | ${r(t.convert, t.limit)} | ${(median(fsckShare.get(c)!) * 100).toFixed(1)} % |`,
    );
  console.log(
    '\n| rootfs tarball | banger import (buildRootfs) | tar -x + mkfs.ext4 -d | ratio (goal ≤ 1.0) |',
  );
  console.log('|---|---:|---:|---:|');
  for (const { c, t } of table)
    console.log(
      `| ${c.name}, first layer | ${s(t.import)} | ${s(t.importBaseline)} | ${r(t.import, t.importBaseline)} |`,
    );
  console.log('\n| image | entries | peak RSS of one build | budget 150 MiB + 300 B/entry |');
  console.log('|---|---:|---:|---:|');
  for (const { c, rss } of table)
    console.log(
      `| ${c.name} | ${rss.entries} | ${(rss.maxRssBytes / 2 ** 20).toFixed(0)} MiB | ${((150 * 2 ** 20 + 300 * rss.entries) / 2 ** 20).toFixed(0)} MiB |`,
    );
} finally {
  await reg.stop();
  await rm(root, { recursive: true, force: true });
  await rm(distDir, { recursive: true, force: true });
}
