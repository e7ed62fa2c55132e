import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registryUnavailable, startRegistry, type TestRegistry } from '../fixtures/registry.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';
import { cacheFiles, makePuller, type PullerFixture, rejection, sha256Of } from './oci-helpers.js';

const skip = await registryUnavailable();
/** Alpine's minirootfs tarballs where ../shared has them, else the busybox rootfs the suite builds. */
const tarballs = await testRootfs();
const amd64 = tarballs.tarball;
const arm64 = tarballs.other;
const fileDigest = async (f: string) =>
  `sha256:${createHash('sha256')
    .update(await readFile(f))
    .digest('hex')}`;

describe.skipIf(skip !== undefined)(
  `oci pull from a real registry${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    let reg: TestRegistry;
    let f: PullerFixture;
    let amdLayer: string;
    let armLayer: string;

    beforeAll(async () => {
      reg = await startRegistry();
      const both = [
        { tarball: amd64, architecture: 'amd64' },
        { tarball: arm64, architecture: 'arm64', variant: 'v8' },
      ];
      await reg.pushImage('alpine:3.20.3', [
        {
          tarball: amd64,
          architecture: 'amd64',
          config: {
            Env: ['A=1'],
            Entrypoint: ['/bin/sh', '-c'],
            Cmd: ['echo hi'],
            WorkingDir: '/srv',
            User: 'nobody',
          },
        },
      ]);
      await reg.pushImage('alpine:multi', both);
      await reg.pushImage('alpine:v2s2', [{ tarball: amd64, architecture: 'amd64' }], { format: 'v2s2' });
      await reg.pushImage('alpine:multi-v2s2', both, { format: 'v2s2' });
      await reg.pushImage('layers:2', [{ tarball: amd64, moreLayers: [arm64], architecture: 'amd64' }]);
      await reg.pushImage('arm-only:1', [{ tarball: arm64, architecture: 'arm64', variant: 'v8' }]);
      amdLayer = await fileDigest(amd64);
      armLayer = await fileDigest(arm64);
    });
    afterAll(async () => reg?.stop());
    beforeEach(async () => {
      f = await makePuller();
    });
    afterEach(async () => f.cleanup());

    it('pulls an OCI image: config, layers streaming the exact bytes from a verified cache file', async () => {
      const img = await f.puller.pull(`${reg.host}/alpine:3.20.3`);
      expect(img.reference).toBe(`${reg.host}/alpine:3.20.3`);
      expect(img.platform).toBe('linux/amd64');
      expect(img.manifestDigest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(img.config).toEqual({
        env: ['A=1'],
        entrypoint: ['/bin/sh', '-c'],
        cmd: ['echo hi'],
        workingDir: '/srv',
        user: 'nobody',
      });
      expect(img.layers.map((l) => [l.digest, l.mediaType])).toEqual([
        [amdLayer, 'application/vnd.oci.image.layer.v1.tar+gzip'],
      ]);
      const layer = img.layers[0];
      expect(layer?.size).toBe((await readFile(amd64)).length);
      expect(await sha256Of(await (layer as NonNullable<typeof layer>).open())).toBe(amdLayer);
      // Reading twice gives a fresh stream from the start.
      expect(await sha256Of(await (layer as NonNullable<typeof layer>).open())).toBe(amdLayer);
      const files = await cacheFiles(f.cacheDir);
      expect(files.blobs).toContain(amdLayer.slice(7));
      expect(files.blobs).toHaveLength(2); // layer + config
      expect(files.tmp).toEqual([]);
      await img.release();
    });

    it.each([
      ['OCI index', 'alpine:multi'],
      ['Docker manifest list', 'alpine:multi-v2s2'],
    ])('chooses the platform from an %s (linux/amd64 by default)', async (_kind, tag) => {
      const def = await f.puller.pull(`${reg.host}/${tag}`);
      expect(def.platform).toBe('linux/amd64');
      expect(def.layers[0]?.digest).toBe(amdLayer);
      const arm = await f.puller.pull(`${reg.host}/${tag}`, { platform: 'linux/arm64' });
      expect(arm.platform).toBe('linux/arm64/v8');
      expect(arm.layers[0]?.digest).toBe(armLayer);
      expect(arm.manifestDigest).not.toBe(def.manifestDigest);
      const aarch = await f.puller.pull(`${reg.host}/${tag}`, { platform: 'linux/aarch64/v8' });
      expect(aarch.manifestDigest).toBe(arm.manifestDigest);
    });

    it('keeps layers oldest first', async () => {
      const img = await f.puller.pull(`${reg.host}/layers:2`);
      expect(img.layers.map((l) => l.digest)).toEqual([amdLayer, armLayer]);
      for (const l of img.layers) expect(await sha256Of(await l.open())).toBe(l.digest);
    });

    it('pulls a Docker v2 schema 2 image', async () => {
      const img = await f.puller.pull(`${reg.host}/alpine:v2s2`);
      expect(img.layers.map((l) => l.mediaType)).toEqual([
        'application/vnd.docker.image.rootfs.diff.tar.gzip',
      ]);
      expect(await sha256Of(await (img.layers[0] as NonNullable<(typeof img.layers)[0]>).open())).toBe(
        amdLayer,
      );
    });

    it('names the platforms an image offers when the one asked for is missing, and caches nothing', async () => {
      const err = await rejection(f.puller.pull(`${reg.host}/alpine:multi`, { platform: 'linux/s390x' }));
      expect(err.code).toBe('not_found');
      expect(err.message).toBe(
        `${reg.host}/alpine:multi has no image for platform linux/s390x; it offers linux/amd64, linux/arm64/v8`,
      );
      const single = await rejection(f.puller.pull(`${reg.host}/arm-only:1`));
      expect(single.message).toMatch(/is built for linux\/arm64, not linux\/amd64/);
      expect(single.hint).toMatch(/--platform linux\/arm64/);
      expect((await cacheFiles(f.cacheDir)).tmp).toEqual([]);
      const bad = await rejection(f.puller.pull(`${reg.host}/alpine:multi`, { platform: 'amd64' }));
      expect(bad.code).toBe('bad_request');
    });

    it('pulls by digest and refuses a digest the registry does not have', async () => {
      const byTag = await f.puller.pull(`${reg.host}/alpine:3.20.3`);
      const byDigest = await f.puller.pull(`${reg.host}/alpine@${byTag.manifestDigest}`);
      expect(byDigest.manifestDigest).toBe(byTag.manifestDigest);
      expect(byDigest.reference).toBe(`${reg.host}/alpine@${byTag.manifestDigest}`);
      const missing = await rejection(f.puller.pull(`${reg.host}/alpine@sha256:${'0'.repeat(64)}`));
      expect(missing.code).toBe('not_found');
    });

    it('says not_found with the reference for an unknown repository or tag', async () => {
      const repo = await rejection(f.puller.pull(`${reg.host}/nope:1`));
      expect(repo.code).toBe('not_found');
      expect(repo.message).toContain(`${reg.host}/nope:1`);
      const tag = await rejection(f.puller.pull(`${reg.host}/alpine:9.9`));
      expect(tag.code).toBe('not_found');
      expect(tag.message).toContain(`${reg.host}/alpine:9.9`);
      expect(await cacheFiles(f.cacheDir)).toEqual({ blobs: [], tmp: [] });
    });

    it('rejects a bad reference before any network traffic', async () => {
      const err = await rejection(f.puller.pull(`${reg.host}/Alpine:3.20`));
      expect(err.code).toBe('bad_request');
      expect(err.message).toMatch(/must be lowercase/);
    });

    it('reports bytes per layer and overall, ending at the layer size', async () => {
      const events: { item?: string; done: number; total?: number }[] = [];
      await f.puller.pull(`${reg.host}/alpine:3.20.3`, {
        progress: (e) => {
          if (e.kind === 'bytes') events.push(e);
        },
      });
      const size = (await readFile(amd64)).length;
      const perLayer = events.filter((e) => e.item === amdLayer);
      expect(perLayer.at(-1)).toEqual({
        kind: 'bytes',
        stage: 'download',
        item: amdLayer,
        done: size,
        total: size,
      });
      expect(events.filter((e) => e.item === undefined).at(-1)).toMatchObject({ done: size, total: size });
      // A warm pull reports the cached layer as complete at once.
      const warm: number[] = [];
      await f.puller.pull(`${reg.host}/alpine:3.20.3`, {
        progress: (e) => {
          if (e.kind === 'bytes' && e.item) warm.push(e.done);
        },
      });
      expect(warm).toEqual([size]);
    });

    it('keeps pinned blobs through prune and removes them once released', async () => {
      const img = await f.puller.pull(`${reg.host}/alpine:3.20.3`);
      const size = await f.puller.cacheSize();
      expect(size).toBeGreaterThan((await readFile(amd64)).length);
      expect(await f.puller.pruneCache()).toEqual({ removed: 0, bytes: 0 });
      expect(await sha256Of(await (img.layers[0] as NonNullable<(typeof img.layers)[0]>).open())).toBe(
        amdLayer,
      );
      await img.release();
      expect(await f.puller.pruneCache({ dryRun: true })).toEqual({ removed: 2, bytes: size });
      expect(await f.puller.cacheSize()).toBe(size);
      expect(await f.puller.pruneCache()).toEqual({ removed: 2, bytes: size });
      expect(await f.puller.cacheSize()).toBe(0);
      expect(await cacheFiles(f.cacheDir)).toEqual({ blobs: [], tmp: [] });
    });

    it('shares one download between concurrent pulls and one pin each', async () => {
      const [a, b] = await Promise.all([
        f.puller.pull(`${reg.host}/alpine:multi`),
        f.puller.pull(`${reg.host}/alpine:multi-v2s2`),
      ]);
      expect(a.layers[0]?.digest).toBe(b.layers[0]?.digest);
      await a.release();
      // b still pins the shared layer.
      await f.puller.pruneCache();
      expect((await cacheFiles(f.cacheDir)).blobs).toContain(amdLayer.slice(7));
      await b.release();
      await f.puller.pruneCache();
      expect((await cacheFiles(f.cacheDir)).blobs).toEqual([]);
    });

    it('re-verifies cached blobs on read: a corrupted cache file fails the read and is removed', async () => {
      const img = await f.puller.pull(`${reg.host}/alpine:3.20.3`);
      const file = join(f.cacheDir, 'blobs', 'sha256', amdLayer.slice(7));
      const bytes = await readFile(file);
      bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
      await writeFile(file, bytes);
      const layer = img.layers[0] as NonNullable<(typeof img.layers)[0]>;
      await expect(sha256Of(await layer.open())).rejects.toThrow(/cached blob .* has digest .* expected/);
      expect((await cacheFiles(f.cacheDir)).blobs).not.toContain(amdLayer.slice(7));
      // The next pull fetches it again.
      const again = await f.puller.pull(`${reg.host}/alpine:3.20.3`);
      expect(await sha256Of(await (again.layers[0] as NonNullable<(typeof again.layers)[0]>).open())).toBe(
        amdLayer,
      );
    });
  },
);
