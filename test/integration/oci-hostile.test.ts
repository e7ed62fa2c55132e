import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registryUnavailable, startRegistry, type TestRegistry } from '../fixtures/registry.js';
import { type RegistryProxy, startRegistryProxy, type Upstream } from '../fixtures/registry-proxy.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';
import { cacheFiles, makePuller, type PullerFixture, rejection } from './oci-helpers.js';

const skip = await registryUnavailable();
/** Alpine's minirootfs tarballs where ../shared has them, else the busybox rootfs the suite builds. */
const tarballs = await testRootfs();
const amd64 = tarballs.tarball;

type Intercept = (req: IncomingMessage, res: ServerResponse, up: Upstream) => boolean | Promise<boolean>;

describe.skipIf(skip !== undefined)(`oci pull of hostile input${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let reg: TestRegistry;
  let layer: string;
  let layerBytes: Buffer;
  let f: PullerFixture;
  let proxy: RegistryProxy | undefined;
  let intercept: Intercept | undefined;

  beforeAll(async () => {
    reg = await startRegistry();
    await reg.pushImage('alpine:3.20.3', [{ tarball: amd64, architecture: 'amd64' }]);
    layerBytes = await readFile(amd64);
    layer = `sha256:${createHash('sha256').update(layerBytes).digest('hex')}`;
  });
  afterAll(async () => reg?.stop());
  beforeEach(async () => {
    f = await makePuller();
    intercept = undefined;
    proxy = await startRegistryProxy({
      upstream: reg.url,
      intercept: (req, res, { upstream }) => intercept?.(req, res, upstream) ?? false,
    });
  });
  afterEach(async () => {
    await f.cleanup();
    await proxy?.close();
  });

  const isLayerGet = (req: IncomingMessage) =>
    req.method === 'GET' && req.url === `/v2/alpine/blobs/${layer}`;
  const isManifestGet = (req: IncomingMessage) => req.method === 'GET' && /\/manifests\//.test(req.url ?? '');

  /** The layer must not be in the cache, and no temp file may be left. */
  async function expectLayerNotCached() {
    const files = await cacheFiles(f.cacheDir);
    expect(files.blobs).not.toContain(layer.slice(7));
    expect(files.tmp).toEqual([]);
  }

  it('refuses a blob whose bytes were tampered with in the registry storage, caching nothing', async () => {
    const path = reg.blobDataPath(layer);
    const original = await readFile(path);
    const bad = Buffer.from(original);
    bad[bad.length - 100] = (bad[bad.length - 100] ?? 0) ^ 0x01;
    await writeFile(path, bad);
    try {
      const err = await rejection(f.puller.pull(`${reg.host}/alpine:3.20.3`));
      expect(err.code).toBe('operation_failed');
      expect(err.message).toMatch(
        new RegExp(`blob ${layer} has digest sha256:[a-f0-9]{64}, expected ${layer}`),
      );
      await expectLayerNotCached();
    } finally {
      await writeFile(path, original);
    }
  });

  it('refuses a truncated stream (connection cut mid-blob), caching nothing', async () => {
    intercept = (req, res) => {
      if (!isLayerGet(req)) return false;
      res.writeHead(200, {
        'content-length': String(layerBytes.length),
        'content-type': 'application/octet-stream',
      });
      res.write(layerBytes.subarray(0, 1_000_000), () => res.destroy());
      return true;
    };
    const err = await rejection(f.puller.pull(`${proxy?.host}/alpine:3.20.3`));
    expect(err.code).toBe('operation_failed');
    expect(err.message).toMatch(/blob sha256:.* failed|truncated|closed/);
    await expectLayerNotCached();
  });

  it('resumes a broken blob download with Range and verifies the whole', async () => {
    let cutNow: (() => void) | undefined;
    intercept = (req, res) => {
      if (!isLayerGet(req) || cutNow) return false;
      res.writeHead(200, { 'content-length': String(layerBytes.length) });
      res.write(layerBytes.subarray(0, 1_500_000));
      cutNow = () => res.destroy();
      return true;
    };
    // Cut the connection once the client has written its first MiB, so the resume point is known.
    const img = await f.puller.pull(`${proxy?.host}/alpine:3.20.3`, {
      progress: (e) => {
        if (e.kind === 'bytes' && e.item === layer && e.done < layerBytes.length) cutNow?.();
      },
    });
    expect(img.layers[0]?.digest).toBe(layer);
    const hits = proxy?.requests.filter((r) => r.path === `/v2/alpine/blobs/${layer}`) ?? [];
    expect(hits).toHaveLength(2);
    expect(hits[0]?.range).toBeUndefined();
    const from = Number(/^bytes=(\d+)-$/.exec(hits[1]?.range ?? '')?.[1]);
    expect(from).toBeGreaterThanOrEqual(1024 * 1024);
    expect(from).toBeLessThanOrEqual(1_500_000);
    expect((await cacheFiles(f.cacheDir)).tmp).toEqual([]);
  });

  it('refuses an empty 200 answer for a blob (the zero-byte cache poisoning regression)', async () => {
    intercept = (req, res) => {
      if (!isLayerGet(req)) return false;
      res.writeHead(200, { 'content-length': '0' }).end();
      return true;
    };
    const err = await rejection(f.puller.pull(`${proxy?.host}/alpine:3.20.3`));
    expect(err.message).toBe(`blob ${layer} is truncated: got 0 of ${layerBytes.length} bytes`);
    await expectLayerNotCached();
    // The next, honest pull works and is not served a poisoned cache entry.
    intercept = undefined;
    const ok = await f.puller.pull(`${proxy?.host}/alpine:3.20.3`);
    expect(ok.layers[0]?.digest).toBe(layer);
    expect((await cacheFiles(f.cacheDir)).blobs).toContain(layer.slice(7));
  });

  it('refuses a blob longer than its descriptor says', async () => {
    intercept = (req, res) => {
      if (!isLayerGet(req)) return false;
      res.writeHead(200).end(Buffer.concat([layerBytes, Buffer.alloc(10)]));
      return true;
    };
    const err = await rejection(f.puller.pull(`${proxy?.host}/alpine:3.20.3`));
    expect(err.message).toMatch(/is larger than the \d+ bytes its manifest declares/);
    await expectLayerNotCached();
  });

  it.each([
    ['declared in Content-Length', true],
    ['streamed without a length', false],
  ])('refuses a manifest over 4 MiB (%s)', async (_how, declared) => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    intercept = (req, res) => {
      if (!isManifestGet(req)) return false;
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        ...(declared ? { 'content-length': String(big.length) } : {}),
      });
      res.end(big);
      return true;
    };
    const err = await rejection(f.puller.pull(`${proxy?.host}/alpine:3.20.3`));
    expect(err.code).toBe('bad_request');
    expect(err.message).toMatch(/over the 4194304-byte limit/);
    expect(await cacheFiles(f.cacheDir)).toEqual({ blobs: [], tmp: [] });
  });

  it.each([
    ['an endless body', false],
    ['a Content-Length over 1 MiB, then silence', true],
  ])('refuses a token answer over 1 MiB (%s) in bounded time and memory', async (_how, declared) => {
    // At most this much is ever offered, then the answer hangs open: a reader without a cap would wait
    // (holding it all) instead of failing.
    const OFFER = 256 * 1024 * 1024;
    let offered = 0;
    const bearerProxy = await startRegistryProxy({
      upstream: reg.url,
      bearer: {
        answerToken: (res) => {
          res.writeHead(200, {
            'content-type': 'application/json',
            ...(declared ? { 'content-length': String(2 * 1024 * 1024) } : {}),
          });
          if (declared) return void res.write('{"token":"');
          const chunk = Buffer.alloc(64 * 1024, 0x61);
          const pump = () => {
            while (!res.destroyed && offered < OFFER) {
              offered += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
          };
          res.write('{"token":"');
          pump();
        },
      },
    });
    try {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<'hung'>((r) => {
        timer = setTimeout(() => r('hung'), 15_000);
      });
      const outcome = await Promise.race([
        rejection(f.puller.pull(`${bearerProxy.host}/alpine:3.20.3`)),
        hung,
      ]);
      clearTimeout(timer);
      expect(outcome).not.toBe('hung');
      if (outcome === 'hung') return;
      expect(outcome.code).toBe('operation_failed');
      expect(outcome.message).toBe(
        `token answer from ${bearerProxy.url}/token is over the 1048576-byte limit`,
      );
      expect(outcome.hint).toContain('broken or hostile');
      expect(Date.now() - started).toBeLessThan(10_000);
      // Cut off near the cap: what was offered past it is only what the sockets buffered.
      expect(offered).toBeLessThan(32 * 1024 * 1024);
      // The ping's challenge sent banger to the token service first: no manifest was asked for.
      expect(bearerProxy.tokenRequests).toHaveLength(1);
      expect(bearerProxy.requests.map((r) => r.path)).toEqual(['/v2/']);
      expect(await cacheFiles(f.cacheDir)).toEqual({ blobs: [], tmp: [] });
    } finally {
      await bearerProxy.close();
    }
  });

  it('refuses schema 1 and unknown manifest media types by name', async () => {
    let body = '';
    let type = '';
    intercept = (req, res) => {
      if (!isManifestGet(req)) return false;
      res.writeHead(200, { 'content-type': type }).end(body);
      return true;
    };
    body = JSON.stringify({ schemaVersion: 1, name: 'alpine', tag: '3.20.3', fsLayers: [], history: [] });
    type = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
    const s1 = await rejection(f.puller.pull(`${proxy?.host}/alpine:3.20.3`));
    expect(s1.code).toBe('bad_request');
    expect(s1.message).toMatch(/Docker schema 1 manifest format, which banger does not support/);
    body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.cncf.helm.chart.v1+json' });
    type = 'application/vnd.cncf.helm.chart.v1+json';
    const helm = await rejection(f.puller.pull(`${proxy?.host}/alpine:3.20.3`));
    expect(helm.message).toMatch(
      /unsupported manifest media type "application\/vnd.cncf.helm.chart.v1\+json"/,
    );
  });

  it('checks the manifest against Docker-Content-Digest', async () => {
    intercept = async (req, res, up) => {
      if (!isManifestGet(req)) return false;
      const real = await up.get(req.url ?? '', { accept: String(req.headers.accept) });
      res
        .writeHead(200, {
          'content-type': real.headers['content-type'],
          'docker-content-digest': `sha256:${'1'.repeat(64)}`,
        })
        .end(real.body);
      return true;
    };
    const err = await rejection(f.puller.pull(`${proxy?.host}/alpine:3.20.3`));
    expect(err.message).toMatch(/has digest sha256:[a-f0-9]{64}, expected sha256:1{64}; nothing was cached/);
  });

  it('retries a 500 and then succeeds', async () => {
    let failures = 0;
    intercept = (req, res) => {
      if (!isLayerGet(req) || failures >= 1) return false;
      failures++;
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN"}]}');
      return true;
    };
    const img = await f.puller.pull(`${proxy?.host}/alpine:3.20.3`);
    expect(img.layers[0]?.digest).toBe(layer);
    expect(proxy?.requests.filter((r) => r.path === `/v2/alpine/blobs/${layer}`)).toHaveLength(2);
  });

  it('downloads a blob once for concurrent pulls of the same image', async () => {
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => f.puller.pull(`${proxy?.host}/alpine:3.20.3`)));
    expect(new Set([a, b, c].map((i) => i?.layers[0]?.digest))).toEqual(new Set([layer]));
    expect(proxy?.requests.filter((r) => r.path === `/v2/alpine/blobs/${layer}`)).toHaveLength(1);
  });

  it("prunes safely while a pull runs: the pull's blobs and temp file survive, the pull completes", async () => {
    let resume: (() => void) | undefined;
    let stalled: (() => void) | undefined;
    const isStalled = new Promise<void>((r) => {
      stalled = r;
    });
    intercept = (req, res) => {
      if (!isLayerGet(req)) return false;
      res.writeHead(200, { 'content-length': String(layerBytes.length) });
      res.write(layerBytes.subarray(0, 1_000_000), () => stalled?.());
      resume = () => res.end(layerBytes.subarray(1_000_000));
      return true;
    };
    const pulling = f.puller.pull(`${proxy?.host}/alpine:3.20.3`);
    await isStalled;
    // The config blob is cached and pinned, the layer is a temp file: prune must touch neither.
    const before = await cacheFiles(f.cacheDir);
    expect(before.tmp).toHaveLength(1); // created before the first byte was asked for
    expect(before.blobs).toHaveLength(1); // the image config
    expect(await f.puller.pruneCache()).toEqual({ removed: 0, bytes: 0 });
    expect(await cacheFiles(f.cacheDir)).toEqual(before);
    resume?.();
    const img = await pulling;
    expect((await cacheFiles(f.cacheDir)).blobs).toContain(layer.slice(7));
    await img.release();
  });

  it('cancels through its AbortSignal mid-blob, leaving no partial file', async () => {
    let held: ServerResponse | undefined;
    intercept = (req, res) => {
      if (!isLayerGet(req)) return false;
      res.writeHead(200, { 'content-length': String(layerBytes.length) });
      res.write(layerBytes.subarray(0, 2 * 1024 * 1024)); // then stall: the rest never comes
      held = res;
      return true;
    };
    const ac = new AbortController();
    const err = await rejection(
      f.puller.pull(`${proxy?.host}/alpine:3.20.3`, {
        signal: ac.signal,
        progress: (e) => {
          if (e.kind === 'bytes' && e.done > 0) ac.abort();
        },
      }),
    );
    expect(err.code).toBe('cancelled');
    await expectLayerNotCached();
    held?.destroy();
  });
});
