// Pull speed of banger's OCI client against `skopeo copy docker://… oci:…` from the same loopback
// registry in the same run: cold (empty cache) and warm (everything cached) pulls of the Alpine 3.20.3
// image (one 3.5 MB layer) and of a synthetic ~128 MiB two-layer image (the size class; its
// layers are random bytes, which the puller never decompresses). Prints medians and ratios.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../src/host/runner.js';
import { createOciPuller } from '../src/oci/index.js';
import { ALPINE_AMD64, testdataDir } from '../test/fixtures/oci-layout.js';
import { registryUnavailable, startRegistry } from '../test/fixtures/registry.js';
import { median, timeMs } from './_lib.js';

const RUNS = 5;
const config = { insecure_registries: [], registry_ca_files: [], registry_auths: {} };

const why = await registryUnavailable();
const td = testdataDir();
if (why || !td) {
  process.stdout.write(`skipped: ${why ?? 'the shared Alpine testdata is missing'}\n`);
  process.exit(0);
}

const runner = createRunner();
const reg = await startRegistry();
const scratch = await mkdtemp(join(tmpdir(), 'bgr-bench-oci-'));
const rows: string[][] = [];
try {
  const big1 = join(scratch, 'big1.bin');
  const big2 = join(scratch, 'big2.bin');
  // Random bytes, marked as uncompressed tar layers (the puller never looks inside).
  const noise = (n: number) => Object.assign(randomBytes(n), { 0: 0 });
  await writeFile(big1, noise(120 * 1024 * 1024));
  await writeFile(big2, noise(8 * 1024 * 1024));
  await reg.pushImage('alpine:3.20.3', [{ tarball: join(td, ALPINE_AMD64), architecture: 'amd64' }]);
  await reg.pushImage('big:1', [{ tarball: big1, moreLayers: [big2], architecture: 'amd64' }]);

  for (const [name, ref] of [
    ['alpine 3.20.3 (3.5 MB)', `${reg.host}/alpine:3.20.3`],
    ['synthetic 2 layers (128 MiB)', `${reg.host}/big:1`],
  ] as const) {
    const skopeo: number[] = [];
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const out = await mkdtemp(join(scratch, 'skopeo-'));
      skopeo.push(
        await timeMs(() =>
          runner.run([
            'skopeo',
            'copy',
            '--quiet',
            '--src-tls-verify=false',
            `docker://${ref}`,
            `oci:${out}/l:t`,
          ]),
        ),
      );
      await rm(out, { recursive: true, force: true });

      const cache = await mkdtemp(join(scratch, 'cache-'));
      const puller = createOciPuller({ cacheDir: cache, config });
      cold.push(await timeMs(() => puller.pull(ref)));
      warm.push(await timeMs(() => puller.pull(ref)));
      await puller.close();
      await rm(cache, { recursive: true, force: true });
    }
    const s = median(skopeo);
    const c = median(cold);
    const w = median(warm);
    rows.push([
      name,
      s.toFixed(0),
      c.toFixed(0),
      (c / s).toFixed(2),
      w.toFixed(1),
      `${((w / c) * 100).toFixed(1)} %`,
    ]);
  }
} finally {
  await reg.stop();
  await rm(scratch, { recursive: true, force: true });
}

process.stdout.write(
  `Medians of ${RUNS} runs, loopback registry (docker-registry 2.8), ms.\n\n` +
    '| image | skopeo copy (baseline) | banger cold | cold / skopeo | banger warm | warm / cold |\n' +
    '|---|---:|---:|---:|---:|---:|\n' +
    rows.map((r) => `| ${r.join(' | ')} |`).join('\n') +
    '\n',
);
