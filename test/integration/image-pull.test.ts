import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_AGENT_PATH } from '../../src/guest/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { debugfsMode, ext4Tree, fsckClean, gnuTarTree, withoutGuestAssets } from '../fixtures/images.js';
import { registryUnavailable, startRegistry, type TestRegistry } from '../fixtures/registry.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';

const skip = await registryUnavailable();
/** Alpine's minirootfs tarballs where ../shared has them, else the busybox rootfs the suite builds. */
const tarballs = await testRootfs();
const amd64 = tarballs.tarball;
const arm64 = tarballs.other;

// Real: docker-registry on 127.0.0.1 with images generated from the Alpine tarballs, the daemon's OCI puller
// and rootfs builder, e2fsprogs.
describe.skipIf(skip !== undefined)(
  `banger image pull from a registry${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    let inst: BangerInstance;
    let reg: TestRegistry;
    const imagesDir = () => join(inst.home, 'state', 'images');
    const show = async (name: string) => {
      const r = await inst.cli(['image', 'show', name, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };

    beforeAll(async () => {
      inst = createInstance();
      reg = await startRegistry();
      const config = {
        Env: ['PATH=/usr/bin:/bin', 'A=1'],
        Entrypoint: ['/bin/sh', '-c'],
        Cmd: ['echo hi'],
        WorkingDir: '/srv',
        User: 'nobody',
      };
      await reg.pushImage('alpine:3.20.3', [{ tarball: amd64, architecture: 'amd64', config }]);
      await reg.pushImage('alpine:multi', [
        { tarball: amd64, architecture: 'amd64' },
        { tarball: arm64, architecture: 'arm64', variant: 'v8' },
      ]);
    });
    afterAll(async () => {
      await reg?.stop();
      await inst?.cleanup();
    });

    it('pulls into a store row named from the reference: OCI config kept, digest recorded, clean ext4 with the agent', async () => {
      const ref = `${reg.host}/alpine:3.20.3`;
      const r = await inst.cli(['image', 'pull', ref]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        new RegExp(
          `^pulled alpine-3\\.20\\.3: oci ${ref.replace(/\./g, '\\.')} \\(sha256:[0-9a-f]{64}, linux/amd64\\)`,
        ),
      );
      expect(r.stderr).toContain('flatten');

      const { image, report } = await show('alpine-3.20.3');
      expect(image.source).toMatchObject({ kind: 'oci', reference: ref, platform: 'linux/amd64' });
      expect(image.config).toEqual({
        env: ['PATH=/usr/bin:/bin', 'A=1'],
        entrypoint: ['/bin/sh', '-c'],
        cmd: ['echo hi'],
        workingDir: '/srv',
        user: 'nobody',
      });
      expect(report).toMatchObject({ version: 1, injectedAssets: expect.any(Number) });
      const rootfs = image.artifacts.rootfsPath;
      expect((await fsckClean(rootfs)).ok).toBe(true);
      const reference = await gnuTarTree(amd64);
      expect(withoutGuestAssets(await ext4Tree(rootfs), reference)).toEqual(reference);
      expect(await debugfsMode(rootfs, GUEST_AGENT_PATH)).toBe('0755');
    });

    it('picks the platform asked for from an index', async () => {
      const r = await inst.cli([
        'image',
        'pull',
        `${reg.host}/alpine:multi`,
        '--platform',
        'linux/arm64/v8',
        '--name',
        'alp-arm',
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      const { image } = await show('alp-arm');
      expect(image.source.platform).toBe('linux/arm64/v8');
      expect(await debugfsMode(image.artifacts.rootfsPath, tarballs.otherMarker)).toBe('0644');
    });

    it('fails cleanly for a missing tag, a taken name and an unknown kernel, leaving nothing', async () => {
      const before = readdirSync(imagesDir()).sort();
      const missing = await inst.cli(['image', 'pull', `${reg.host}/alpine:nope`]);
      expect(missing.exitCode).toBe(1);
      expect(missing.stderr).toMatch(/^banger: .*alpine:nope/m);

      const taken = await inst.cli(['image', 'pull', `${reg.host}/alpine:3.20.3`]);
      expect(taken.exitCode).toBe(1);
      expect(taken.stderr).toMatch(/^banger: image alpine-3\.20\.3 already exists/m);

      const kernel = await inst.cli([
        'image',
        'pull',
        `${reg.host}/alpine:multi`,
        '--name',
        'k',
        '--kernel',
        '/nonexistent/vmlinuz',
      ]);
      expect(kernel.exitCode).toBe(1);
      expect(kernel.stderr).toContain('/nonexistent/vmlinuz does not exist');
      expect((await inst.cli(['image', 'show', 'k'])).exitCode).toBe(1);
      expect(readdirSync(imagesDir()).sort()).toEqual(before);
    });

    it('two concurrent pulls of one name: one wins, the other is told, one row and one directory', async () => {
      const before = readdirSync(imagesDir()).length;
      const ref = `${reg.host}/alpine:multi`;
      const [a, b] = await Promise.all([
        inst.cli(['image', 'pull', ref, '--name', 'race']),
        inst.cli(['image', 'pull', ref, '--name', 'race']),
      ]);
      expect([a.exitCode, b.exitCode].sort()).toEqual([0, 1]);
      expect((a.exitCode === 1 ? a : b).stderr).toMatch(/image race already exists/);
      expect(readdirSync(imagesDir()).length).toBe(before + 1);
      const { image } = await show('race');
      expect(existsSync(image.artifacts.rootfsPath)).toBe(true);
    });

    it('prunes the blob cache the pulls filled', async () => {
      const dry = await inst.cli(['image', 'cache', 'prune', '--dry-run']);
      expect(dry.stdout).toMatch(/^would free [\d.]+ (KiB|MiB) across [1-9]\d* blob\(s\) in /);
      const real = await inst.cli(['image', 'cache', 'prune']);
      expect(real.stdout).toMatch(/^freed [\d.]+ (KiB|MiB) across [1-9]\d* blob\(s\) in /);
      const again = await inst.cli(['image', 'cache', 'prune', '--dry-run']);
      expect(again.stdout).toMatch(/^would free 0 B across 0 blob\(s\)/);
    });
  },
);
