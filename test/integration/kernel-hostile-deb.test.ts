/**
 * A kernel .deb whose boot/vmlinuz-* is a symlink out of the package (absolute, or climbing through
 * another link): `kernel import --deb` must refuse it by what is on disk after dpkg-deb -x, and never read
 * the host file it points at into the kernel store.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { createKernelManager } from '../../src/kernel/index.js';

const runner = createRunner();
const probe = await runner.run(['sh', '-c', 'command -v dpkg-deb'], { allowFailure: true });
const skipReason = probe.exitCode === 0 ? undefined : 'dpkg-deb is not installed';

describe.skipIf(skipReason !== undefined)(
  `hostile kernel packages${skipReason ? ` (${skipReason})` : ''}`,
  () => {
    let work: string;
    let secret: string;
    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'banger-kernel-deb-'));
      secret = join(work, 'host-secret');
      await writeFile(secret, 'HOST SECRET');
    });
    afterAll(async () => rm(work, { recursive: true, force: true }));

    /** A package whose tree holds `links` (path -> target) and a config, built with the real dpkg-deb. */
    async function deb(name: string, links: Record<string, string>): Promise<string> {
      const pkg = join(work, name);
      await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
      await mkdir(join(pkg, 'boot'), { recursive: true });
      await writeFile(
        join(pkg, 'DEBIAN', 'control'),
        `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: banger tests <t@example.invalid>\nDescription: hostile\n`,
      );
      await writeFile(join(pkg, 'boot', 'config-6.1.0-evil'), 'CONFIG_VIRTIO_BLK=y\nCONFIG_EXT4_FS=y\n');
      for (const [path, target] of Object.entries(links)) {
        await mkdir(join(pkg, path, '..'), { recursive: true });
        await symlink(target, join(pkg, path));
      }
      const out = join(work, `${name}_1.0_all.deb`);
      await runner.run(['dpkg-deb', '--root-owner-group', '-b', pkg, out]);
      return out;
    }

    it.each([
      ['absolute', () => ({ 'boot/vmlinuz-6.1.0-evil': secret }), /points to an absolute path/],
      [
        'climbing',
        () => ({
          'usr/d': '..',
          // Spelled out it stays inside (40 names down, 40 up); on disk usr/d is the root, so it climbs out.
          'boot/vmlinuz-6.1.0-evil': `../${'usr/d/'.repeat(20)}${'../'.repeat(40)}${secret.slice(1)}`,
        }),
        /leads outside the tree/,
      ],
    ])('refuses a package whose kernel is a %s symlink out of it', async (name, links, message) => {
      const kernels = join(work, `store-${name}`);
      const m = createKernelManager({ kernelsDir: kernels, runner });
      const err = await m.importFromDeb(name, await deb(name, links())).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'bad_request' });
      expect((err as Error).message).toMatch(/^kernel package symlink boot\/vmlinuz-6\.1\.0-evil -> /);
      expect((err as Error).message).toMatch(message);
      expect(existsSync(kernels) ? await readdir(kernels) : []).toEqual([]);
    });
  },
);
