import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registryUnavailable, startRegistry, type TestRegistry } from '../fixtures/registry.js';
import { type RegistryProxy, startRegistryProxy } from '../fixtures/registry-proxy.js';
import { testRootfs } from '../fixtures/rootfs-tarball.js';
import { makePuller, noRegistryConfig, type PullerFixture, rejection } from './oci-helpers.js';

const skip = await registryUnavailable();
/** Alpine's minirootfs tarballs where ../shared has them, else the busybox rootfs the suite builds. */
const tarballs = await testRootfs();
const amd64 = tarballs.tarball;
const creds = { username: 'tester', password: 's3cret' };

describe.skipIf(skip !== undefined)(`oci registry auth${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let open: TestRegistry;
  let locked: TestRegistry;
  let tls: TestRegistry;
  let scratch: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'bgr-oci-auth-'));
    [open, locked, tls] = await Promise.all([
      startRegistry(),
      startRegistry({ htpasswd: creds }),
      startRegistry({ htpasswd: creds, tls: true }),
    ]);
    for (const r of [open, locked, tls])
      await r.pushImage('alpine:3.20.3', [{ tarball: amd64, architecture: 'amd64' }]);
  });
  afterAll(async () => {
    await Promise.all([open?.stop(), locked?.stop(), tls?.stop()]);
    await rm(scratch, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function puller(over: Parameters<typeof makePuller>[0] = {}): Promise<PullerFixture> {
    const f = await makePuller(over);
    cleanups.push(() => f.cleanup());
    return f;
  }
  async function proxy(
    opts: Omit<Parameters<typeof startRegistryProxy>[0], 'upstream'>,
  ): Promise<RegistryProxy> {
    const p = await startRegistryProxy({ upstream: open.url, ...opts });
    cleanups.push(() => p.close());
    return p;
  }
  async function dockerConfig(json: object): Promise<string> {
    const path = join(await mkdtemp(join(scratch, 'docker-')), 'config.json');
    await writeFile(path, JSON.stringify(json));
    return path;
  }

  describe('Basic (htpasswd registry)', () => {
    it('without credentials: unauthorized, naming the registry and how to log in', async () => {
      const f = await puller();
      const err = await rejection(f.puller.pull(`${locked.host}/alpine:3.20.3`));
      expect(err.code).toBe('unauthorized');
      expect(err.message).toContain(`registry ${locked.host} needs a login`);
      expect(err.hint).toContain(`registry_auths`);
      expect(err.hint).toContain(`docker login ${locked.host}`);
    });

    it('with credentials from config.toml registry_auths', async () => {
      const f = await puller({ config: { ...noRegistryConfig, registry_auths: { [locked.host]: creds } } });
      const img = await f.puller.pull(`${locked.host}/alpine:3.20.3`);
      expect(img.layers).toHaveLength(1);
    });

    it('with a wrong password: unauthorized, saying the credentials were refused', async () => {
      const f = await puller({
        config: {
          ...noRegistryConfig,
          registry_auths: { [locked.host]: { username: 'tester', password: 'nope' } },
        },
      });
      const err = await rejection(f.puller.pull(`${locked.host}/alpine:3.20.3`));
      expect(err.code).toBe('unauthorized');
      expect(err.message).toContain('refused the credentials');
    });

    it('with credentials from ~/.docker/config.json auths', async () => {
      const auth = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      const path = await dockerConfig({ auths: { [`http://${locked.host}`]: { auth } } });
      const f = await puller({ dockerConfigPath: path });
      expect((await f.puller.pull(`${locked.host}/alpine:3.20.3`)).layers).toHaveLength(1);
    });

    it.each(['credHelpers', 'credsStore'])(
      'with credentials from a docker-credential helper (%s)',
      async (kind) => {
        // A real helper program on PATH, speaking the docker-credential protocol (server URL on stdin).
        const bin = await mkdtemp(join(scratch, 'bin-'));
        const log = join(bin, 'asked');
        await writeFile(
          join(bin, 'docker-credential-banger-test'),
          `#!/bin/sh\n[ "$1" = get ] || exit 1\ncat > ${log}\nprintf '{"ServerURL":"x","Username":"${creds.username}","Secret":"${creds.password}"}'\n`,
        );
        await chmod(join(bin, 'docker-credential-banger-test'), 0o755);
        const oldPath = process.env.PATH;
        process.env.PATH = `${bin}${delimiter}${oldPath}`;
        cleanups.push(async () => {
          process.env.PATH = oldPath;
        });
        const path = await dockerConfig(
          kind === 'credHelpers'
            ? { credHelpers: { [locked.host]: 'banger-test' } }
            : { credsStore: 'banger-test' },
        );
        const f = await puller({ dockerConfigPath: path });
        expect((await f.puller.pull(`${locked.host}/alpine:3.20.3`)).layers).toHaveLength(1);
        expect(await readFile(log, 'utf8')).toBe(locked.host);
      },
    );
  });

  describe('TLS + htpasswd registry on loopback', () => {
    it('names the host on a certificate it cannot verify, and never downgrades to HTTP', async () => {
      const f = await puller({ config: { ...noRegistryConfig, registry_auths: { [tls.host]: creds } } });
      const err = await rejection(f.puller.pull(`${tls.host}/alpine:3.20.3`));
      expect(err.code).toBe('operation_failed');
      expect(err.message).toMatch(new RegExp(`^TLS with registry ${tls.host} failed: .*self.signed`, 'i'));
      expect(err.hint).toContain('registry_ca_files');
    });

    it('pulls with the CA from registry_ca_files and Basic credentials', async () => {
      const f = await puller({
        config: {
          ...noRegistryConfig,
          registry_ca_files: [tls.caFile ?? ''],
          registry_auths: { [tls.host]: creds },
        },
      });
      const img = await f.puller.pull(`${tls.host}/alpine:3.20.3`);
      expect(img.layers).toHaveLength(1);
    });
  });

  describe('Bearer (token service in front of the registry)', () => {
    it('fetches one token per repository scope and reuses it', async () => {
      const p = await proxy({ bearer: {} });
      const f = await puller();
      await f.puller.pull(`${p.host}/alpine:3.20.3`);
      await f.puller.pull(`${p.host}/alpine:3.20.3`);
      expect(p.tokenRequests.map((t) => t.scope)).toEqual(['repository:alpine:pull']);
      expect(p.tokenRequests[0]?.authorization).toBeUndefined(); // anonymous: no credentials configured
      const v2 = p.requests.filter((r) => r.path !== '/v2/');
      expect(v2.length).toBeGreaterThan(0);
      expect(v2.every((r) => r.authorization?.startsWith('Bearer '))).toBe(true);
    });

    it('sends configured credentials to the token service, and refuses without them', async () => {
      const p = await proxy({ bearer: { credentials: creds } });
      const anon = await puller();
      const err = await rejection(anon.puller.pull(`${p.host}/alpine:3.20.3`));
      expect(err.code).toBe('unauthorized');
      expect(err.message).toContain(`token request for ${p.host}`);
      expect(err.hint).toContain('docker login');
      const f = await puller({ config: { ...noRegistryConfig, registry_auths: { [p.host]: creds } } });
      expect((await f.puller.pull(`${p.host}/alpine:3.20.3`)).layers).toHaveLength(1);
      expect(p.tokenRequests.at(-1)?.authorization).toBe(
        `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`,
      );
    });

    it('refuses a token realm on another host over plain HTTP, sending it nothing', async () => {
      const p = await proxy({ bearer: { realm: 'http://127.0.0.2:9/token' } });
      const f = await puller({ config: { ...noRegistryConfig, registry_auths: { [p.host]: creds } } });
      const err = await rejection(f.puller.pull(`${p.host}/alpine:3.20.3`));
      expect(err.message).toMatch(/sent its token realm to another host over plain HTTP .*; refused/);
      expect(p.tokenRequests).toEqual([]);
    });

    it('never sends Authorization to a redirect target on another host', async () => {
      // Blobs redirect to "another host" (127.0.0.2), as registries redirect to object storage.
      const cdn = await proxy({ listenHost: '127.0.0.2' });
      const p = await proxy({
        bearer: {},
        intercept: (req, res) => {
          if (!/\/blobs\//.test(req.url ?? '')) return false;
          res.writeHead(307, { location: `${cdn.url}${req.url}` }).end();
          return true;
        },
      });
      const f = await puller();
      const img = await f.puller.pull(`${p.host}/alpine:3.20.3`);
      expect(img.layers).toHaveLength(1);
      const blobHits = p.requests.filter((r) => /\/blobs\//.test(r.path));
      expect(blobHits.length).toBeGreaterThan(0);
      expect(blobHits.every((r) => r.authorization?.startsWith('Bearer '))).toBe(true);
      expect(cdn.requests.length).toBe(blobHits.length);
      expect(cdn.requests.every((r) => r.authorization === undefined)).toBe(true);
    });
  });
});
