// Pull speed of banger's OCI client against `skopeo copy docker://… oci:…` from the same loopback
// registry in the same run: cold (empty cache) and warm (everything cached) pulls of the Alpine 3.20.3
// image (one 3.5 MB layer), a synthetic ~128 MiB two-layer image (random bytes, which the puller never
// decompresses) and the image: Debian bookworm minbase from debootstrap in two gzipped layers.
// Prints medians and ratios.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../src/host/runner.js';
import { createOciPuller } from '../src/oci/index.js';
import { registryUnavailable, startRegistry } from '../test/fixtures/registry.js';
import { ALPINE_AMD64, sharedTestdata } from '../test/fixtures/shared.js';
import { debianLayers } from './_debian.js';
import { median, timeMs } from './_lib.js';

const RUNS = 5;
const config = { insecure_registries: [], registry_ca_files: [], registry_auths: {} };

const why = await registryUnavailable();
const alpine = sharedTestdata(ALPINE_AMD64);
if (why || !alpine) {
  // A benchmark that cannot measure has failed: exit non-zero so no one reads "nothing printed" as a result.
  process.stderr.write(
    `oci-pull cannot run: ${why ?? 'the shared Alpine testdata (../shared/testdata) is missing'}\n`,
  );
  process.exit(1);
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
  await reg.pushImage('alpine:3.20.3', [{ tarball: alpine, architecture: 'amd64' }]);
  await reg.pushImage('big:1', [{ tarball: big1, moreLayers: [big2], architecture: 'amd64' }]);
  const images: [string, string][] = [
    ['alpine 3.20.3 (3.5 MB)', `${reg.host}/alpine:3.20.3`],
    ['synthetic 2 layers (128 MiB)', `${reg.host}/big:1`],
  ];
  // The image: a debootstrap Debian tree in two gzipped layers; a failure to make it fails the bench.
  {
    const [l1, ...more] = await debianLayers(scratch);
    await reg.pushImage('debian:bookworm', [
      { tarball: l1 as string, moreLayers: more, architecture: 'amd64' },
    ]);
    const mb = (await Promise.all([l1 as string, ...more].map((f) => stat(f)))).reduce(
      (n, st) => n + st.size,
      0,
    );
    images.push([
      `debian bookworm minbase, 2 layers (${(mb / 1e6).toFixed(0)} MB gzipped)`,
      `${reg.host}/debian:bookworm`,
    ]);
  }

  for (const [name, ref] of images) {
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
