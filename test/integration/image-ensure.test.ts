import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/index.js';
import { createImageService, type ImageService } from '../../src/daemon/services/images/index.js';
import { guestAssets } from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';
import { createKernelManager } from '../../src/kernel/index.js';
import { BangerError } from '../../src/model/errors.js';
import type { ProgressEvent } from '../../src/model/progress.js';
import { createOciPuller, type OciPuller } from '../../src/oci/index.js';
import { buildRootfs, DEFAULT_LIMITS, injectAssets, writeFidelityReport } from '../../src/rootfs/index.js';
import { createStore, openStore, type Store } from '../../src/store/index.js';
import { registryUnavailable, startRegistry, type TestRegistry } from '../fixtures/registry.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';

const skip = await registryUnavailable();
/** Alpine's minirootfs tarballs where ../shared has them, else the busybox rootfs the suite builds. */
const tarballs = await testRootfs();

// Real: the image service as the daemon builds it (store, kernel manager, OCI puller, rootfs builder, guest
// assets) against a docker-registry on 127.0.0.1. `ensure` is what `vm run` calls.
describe.skipIf(skip !== undefined)(`images.ensure${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir: string;
  let reg: TestRegistry;
  let store: Store;
  let puller: OciPuller;
  let images: ImageService;
  const imagesDir = () => join(dir, 'images');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bgr-ensure-'));
    reg = await startRegistry();
    await reg.pushImage('alpine:3.20.3', [{ tarball: tarballs.tarball, architecture: 'amd64' }]);
    const runner = createRunner();
    store = createStore(openStore(join(dir, 'banger.db')));
    puller = createOciPuller({ cacheDir: join(dir, 'oci'), config: defaultConfig(), runner });
    images = createImageService({
      store,
      kernels: createKernelManager({ kernelsDir: join(dir, 'kernels'), runner }),
      runner,
      log: pino({ level: 'silent' }),
      imagesDir: imagesDir(),
      ociDir: join(dir, 'oci'),
      parts: { rootfs: { buildRootfs, writeFidelityReport, injectAssets }, guest: { guestAssets }, puller },
      limits: DEFAULT_LIMITS,
    });
    await images.sweep();
  });
  afterAll(async () => {
    await puller?.close();
    store?.db.close();
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a cancelled ensure leaves no row and no directory', async () => {
    const controller = new AbortController();
    const progress = (e: ProgressEvent) => {
      if (e.kind === 'stage' && e.stage === 'write') controller.abort();
    };
    const err = await images
      .ensure(`${reg.host}/alpine:3.20.3`, { progress, signal: controller.signal })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(images.list()).toEqual([]);
    expect(readdirSync(imagesDir())).toEqual([]);
  });

  it('pulls on first use; concurrent callers get the same image; later calls by name or ref reuse it', async () => {
    const ref = `${reg.host}/alpine:3.20.3`;
    const [a, b] = await Promise.all([images.ensure(ref), images.ensure(ref)]);
    expect(a.id).toBe(b.id);
    expect(a.name).toBe('alpine-3.20.3');
    expect(images.list()).toHaveLength(1);
    expect(readdirSync(imagesDir())).toEqual([a.id]);
    expect((await images.ensure('alpine-3.20.3')).id).toBe(a.id);
    expect((await images.ensure(ref)).id).toBe(a.id);
  });

  it('an unknown bare name is not_found and lists the catalog', async () => {
    const err = await images.ensure('no-such-image').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).code).toBe('not_found');
    expect((err as BangerError).message).toMatch(/available: debian-bookworm/);
  });
});
