// `npm run bench ext4-extract`: copying a directory out of an ext4 image, as the work-disk seed does with the
// image's /root. banger's own read-only reader (extractDirectory, every entry O_EXCL|O_NOFOLLOW) against the
// baseline it replaced, `debugfs rdump` (which a crafted image could steer into host files). Two trees: the
// Alpine minirootfs's /etc (small, like a /root) and its whole /usr (many entries). Interleaved runs; medians.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../src/host/index.js';
import { extractDirectory } from '../src/rootfs/index.js';
import { ALPINE_TARBALL } from '../test/fixtures/shared.js';
import { median, timeMs } from './_lib.js';

const RUNS = 9;
const runner = createRunner();
const root = await mkdtemp(join(tmpdir(), 'banger-bench-extract-'));
try {
  const tree = join(root, 'tree');
  await mkdir(tree);
  await runner.run(['tar', '-xzf', ALPINE_TARBALL, '-C', tree, '--numeric-owner']);
  const image = join(root, 'alpine.ext4');
  await runner.run(['mkfs.ext4', '-q', '-F', '-d', tree, image, '64M']);

  const rows: string[][] = [];
  for (const dir of ['/etc', '/usr']) {
    const reader: number[] = [];
    const rdump: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const a = join(root, `r${i}`);
      const b = join(root, `d${i}`);
      await mkdir(a);
      await mkdir(b);
      rdump.push(await timeMs(() => runner.run(['debugfs', '-R', `rdump ${dir} ${b}`, image])));
      reader.push(await timeMs(() => extractDirectory(image, dir, a)));
      await rm(a, { recursive: true, force: true });
      await rm(b, { recursive: true, force: true });
    }
    const entries = (await runner.run(['find', join(tree, dir)])).stdout.split('\n').length;
    const base = median(rdump);
    const ours = median(reader);
    rows.push([
      `alpine ${dir} (${entries} entries)`,
      base.toFixed(1),
      ours.toFixed(1),
      `${(ours / base).toFixed(2)}×`,
    ]);
  }
  process.stdout.write(
    [
      `| tree | debugfs rdump, ms (baseline) | banger extractDirectory, ms | banger / baseline |`,
      '|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
      `medians of ${RUNS}, interleaved`,
      '',
    ].join('\n'),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
