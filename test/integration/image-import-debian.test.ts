import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  embeddedImageCatalogPath,
  findImageEntry,
  parseImageCatalog,
} from '../../src/catalog/images/index.js';
import { recipeTarball } from '../../src/daemon/services/images/index.js';
import { createRunner } from '../../src/host/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import {
  cliLong,
  debugfsMode,
  ext4Tree,
  fsckClean,
  gnuTarTree,
  specialModes,
  withoutGuestAssets,
} from '../fixtures/images.js';
import { testCacheDir } from '../fixtures/kernel.js';

const skip =
  process.getuid?.() !== 0
    ? 'debootstrap and GNU tar extraction with owners need root'
    : (await execa('which', ['debootstrap'], { reject: false })).exitCode !== 0
      ? 'debootstrap is not installed'
      : undefined;

/** Device nodes and FIFOs: debugfs rdump cannot make them, so they are compared through `debugfs stat`. */
const special = (l: string) => / [cbp] /.test(l.slice(l.indexOf(' '), l.indexOf(' ') + 3));

// Real: a debootstrap tree of the default recipe (shared with image-recipe.test.ts through the test cache),
// imported as a tarball and compared with what GNU tar extracts from the same tarball.
describe.skipIf(skip !== undefined)(
  `tar import of a debootstrap tarball${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    let inst: BangerInstance;
    let tarball: string;
    let work: string;
    beforeAll(async () => {
      inst = createInstance();
      work = mkdtempSync(join(tmpdir(), 'bgr-deb-'));
      const catalog = parseImageCatalog(await readFile(embeddedImageCatalogPath(), 'utf8'), 'embedded');
      const entry = findImageEntry(catalog, 'debian-bookworm');
      if (entry.kind !== 'recipe') throw new Error('the default entry is a recipe');
      tarball = await recipeTarball({
        runner: createRunner(),
        entry,
        workDir: work,
        cacheDir: join(testCacheDir(), 'recipes'),
      });
    }, 900_000);
    afterAll(async () => {
      await inst?.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    it('keeps every entry as GNU tar extracts it: owners, modes, setuid, hardlinks, symlinks, devices', {
      timeout: 600_000,
    }, async () => {
      const r = await cliLong(inst, ['image', 'import', 'deb', tarball]);
      expect(r.exitCode, r.stderr).toBe(0);
      const { image, report } = JSON.parse((await inst.cli(['image', 'show', 'deb', '--json'])).stdout);
      const rootfs = image.artifacts.rootfsPath;
      expect((await fsckClean(rootfs)).ok).toBe(true);
      const reference = await gnuTarTree(tarball);
      const ours = withoutGuestAssets(await ext4Tree(rootfs), reference);
      expect(ours).toEqual(reference.filter((l) => !special(l)));
      const modes = await specialModes(tarball);
      expect(modes.size).toBeGreaterThan(10);
      for (const [path, mode] of modes) expect(await debugfsMode(rootfs, `/${path}`), path).toBe(`0${mode}`);
      expect(report.kept.deviceNodes).toBe(reference.filter((l) => / c /.test(l)).length);
      expect((await execa('debugfs', ['-R', 'stat /dev/null', rootfs])).stdout).toMatch(
        /Type: character special/,
      );
      expect(report.entries.hardlink).toBeGreaterThan(0);
    });
  },
);
