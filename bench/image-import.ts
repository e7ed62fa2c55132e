// Tar import: `banger image import` (CLI -> daemon -> rootfs builder with the guest assets, e2fsck included)
// against the baseline a shell user would write, `tar -x` as root then `mkfs.ext4 -d` on a 1 GiB sparse file,
// measured in the same run on the same tarballs. The Alpine minirootfs comes from ../shared/testdata; the
// Debian tree tarball is the one the recipe test caches (used when present).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createInstance } from '../test/fixtures/banger-instance.js';
import { ALPINE_TARBALL, cliLong } from '../test/fixtures/images.js';
import { testCacheDir } from '../test/fixtures/kernel.js';
import { median, timeMs } from './_lib.js';

async function baseline(tarball: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-base-'));
  try {
    await execa('mkdir', [join(dir, 'tree')]);
    await execa('tar', ['-xpf', tarball, '--numeric-owner', '-C', join(dir, 'tree')]);
    await execa('truncate', ['-s', '1G', join(dir, 'out.ext4')]);
    await execa('mkfs.ext4', ['-F', '-q', '-d', join(dir, 'tree'), join(dir, 'out.ext4')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const inst = createInstance();
const rows: string[] = [];
try {
  await inst.cli(['image', 'list']); // start the daemon outside the timings
  const debianTar = existsSync(join(testCacheDir(), 'recipes'))
    ? readdirSync(join(testCacheDir(), 'recipes')).find((f) => f.endsWith('.tar'))
    : undefined;
  const inputs: [string, string, number][] = [
    ['Alpine 3.20.3 minirootfs (tar.gz, 3.3 MiB)', ALPINE_TARBALL, 5],
  ];
  if (debianTar)
    inputs.push([
      'Debian bookworm recipe tree (tar, ~330 MiB)',
      join(testCacheDir(), 'recipes', debianTar),
      3,
    ]);
  let n = 0;
  for (const [label, tarball, runs] of inputs) {
    const ours: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < runs; i++) {
      base.push(await timeMs(() => baseline(tarball)));
      const name = `bench-${n++}`;
      ours.push(
        await timeMs(async () => {
          const r = await cliLong(inst, ['image', 'import', name, tarball]);
          if (r.exitCode !== 0) throw new Error(r.stderr);
        }),
      );
      await inst.cli(['image', 'rm', name]);
    }
    const b = median(base);
    const o = median(ours);
    rows.push(
      `| ${label} | ${runs} | ${(b / 1000).toFixed(2)} s | ${(o / 1000).toFixed(2)} s | ${(o / b).toFixed(2)}× |`,
    );
  }
} finally {
  await inst.cleanup();
}
process.stdout.write(
  '| input | runs | baseline `tar -x` + `mkfs.ext4 -d` (median) | `banger image import` (median) | ratio |\n',
);
process.stdout.write('|---|---|---|---|---|\n');
process.stdout.write(`${rows.join('\n')}\n`);
