import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/index.js';
import { BangerError, badRequest, operationFailed } from '../model/errors.js';
import { type Authenticator, loginHint } from './auth/authenticator.js';
import { registryError } from './errors.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import type { ImageReference } from './reference.js';
import { type HttpResponse, send } from './transport/http.js';
import { readCapped } from './transport/read-capped.js';

/** Registries cap manifests at 4 MiB (distribution's limit); anything bigger is hostile or broken. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface FetchedManifest {
  body: Buffer;
  /** sha256 of the exact bytes received. */
  digest: string;
  contentType: string | undefined;
}

export interface RegistryClient {
  /** GET a manifest by tag or digest; the digest is checked against the request or Docker-Content-Digest. */
  getManifest(ref: ImageReference, tagOrDigest: string, signal?: AbortSignal): Promise<FetchedManifest>;
  /** GET a blob as a stream from `offset` (Range); the caller verifies it (the blob cache does). */
  openBlob(
    ref: ImageReference,
    digest: string,
    signal?: AbortSignal,
    offset?: number,
  ): Promise<{ body: Readable; offset: number }>;
}

/** Loopback registries speak plain HTTP, as Docker assumes for localhost. */
export function isLoopback(registry: string): boolean {
  const host = new URL(`http://${registry}`).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * How a registry is reached: HTTPS, except that loopback registries and those in `insecure_registries`
 * may speak plain HTTP. Those are tried over HTTPS first (as Docker does) and fall back to HTTP only when
 * the server answers the TLS hello in plain text; a TLS server with a bad certificate is an error, never
 * a reason to downgrade.
 */
export function transportFor(
  registry: string,
  config: Pick<Config, 'insecure_registries'>,
): 'https' | 'https-or-http' {
  return isLoopback(registry) || config.insecure_registries.includes(registry) ? 'https-or-http' : 'https';
}

/** The TLS hello was answered by a plain-HTTP server. */
function speaksPlainHttp(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || e.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return true;
  }
  return false;
}

/** The distribution API client: ping, auth on 401, manifests and blobs. Stateless beyond its caches. */
export function createRegistryClient(deps: {
  config: Pick<Config, 'insecure_registries'>;
  dispatcher: Dispatcher;
  auth: Authenticator;
}): RegistryClient {
  const pings = new Map<string, Promise<string>>();

  // One ping per registry: picks the scheme, learns the auth challenge and proves the host speaks the
  // v2 API. Resolves to the base URL every later request uses.
  function ping(registry: string, signal?: AbortSignal): Promise<string> {
    let p = pings.get(registry);
    if (!p) {
      p = (async () => {
        const mayBePlain = transportFor(registry, deps.config) === 'https-or-http';
        let base = `https://${registry}`;
        let res: HttpResponse;
        try {
          res = await send(deps.dispatcher, new URL('/v2/', base), {
            signal,
            ...(mayBePlain ? { attempts: 1 } : {}),
          });
        } catch (err) {
          if (!mayBePlain || !speaksPlainHttp(err)) throw err;
          base = `http://${registry}`;
          res = await send(deps.dispatcher, new URL('/v2/', base), { signal });
        }
        await res.body.dump();
        if (res.statusCode === 401) deps.auth.learn(registry, res.headers['www-authenticate']);
        else if (res.statusCode !== 200)
          throw operationFailed(
            `${registry} does not answer as an OCI registry (GET /v2/ gave HTTP ${res.statusCode})`,
          );
        return base;
      })();
      pings.set(registry, p);
      p.catch(() => pings.delete(registry));
    }
    return p;
  }

  async function get(
    ref: ImageReference,
    path: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const base = await ping(ref.registry, signal);
    const scope = `repository:${ref.repository}:pull`;
    const url = new URL(path, base);
    const auth = await deps.auth.header(ref.registry, scope, signal);
    let res = await send(deps.dispatcher, url, {
      headers: auth ? { ...headers, authorization: auth } : headers,
      signal,
    });
    if (res.statusCode === 401) {
      const challenge = res.headers['www-authenticate'];
      await res.body.dump();
      const retry = await deps.auth.onUnauthorized(ref.registry, scope, challenge, signal);
      res = await send(deps.dispatcher, url, { headers: { ...headers, authorization: retry }, signal });
      if (res.statusCode === 401) {
        await res.body.dump();
        throw new BangerError(
          'unauthorized',
          `registry ${ref.registry} refused the credentials banger has for ${ref}`,
          {
            hint: `check the credentials, or whether ${ref.repository} exists; ${loginHint(ref.registry)}`,
          },
        );
      }
    }
    return res;
  }

  return {
    async getManifest(ref, tagOrDigest, signal) {
      const what = `${ref}`;
      const res = await get(
        ref,
        `/v2/${ref.repository}/manifests/${tagOrDigest}`,
        { accept: MANIFEST_ACCEPT },
        signal,
      );
      if (res.statusCode !== 200) {
        const err = await registryError(res, res.url, `cannot get manifest of ${what}`);
        if (err.code === 'not_found')
          throw new BangerError(
            'not_found',
            `image ${what} not found: the registry has no such repository or tag`,
            {
              cause: err,
            },
          );
        throw err;
      }
      const body = await readCapped(res, MAX_MANIFEST_BYTES, (declared) =>
        badRequest(
          `manifest of ${what} is ${declared === undefined ? 'over' : `${declared} bytes, over`} the ${MAX_MANIFEST_BYTES}-byte limit`,
        ),
      );
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      const expected = tagOrDigest.startsWith('sha256:') ? tagOrDigest : res.headers['docker-content-digest'];
      if (typeof expected === 'string' && expected.startsWith('sha256:') && expected !== digest)
        throw operationFailed(
          `manifest of ${what} has digest ${digest}, expected ${expected}; nothing was cached`,
        );
      const ct = res.headers['content-type'];
      return { body, digest, contentType: typeof ct === 'string' ? ct : undefined };
    },

    async openBlob(ref, digest, signal, offset = 0) {
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      const res = await get(ref, `/v2/${ref.repository}/blobs/${digest}`, headers, signal);
      if (res.statusCode === 206 && offset > 0) {
        // Only trust a partial answer that starts where we asked.
        const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1];
        if (Number(start) === offset) return { body: res.body, offset };
        res.body.destroy();
        throw operationFailed(
          `${ref}: blob ${digest} resumed at the wrong offset (${String(res.headers['content-range'])})`,
        );
      }
      if (res.statusCode !== 200)
        throw await registryError(res, res.url, `cannot get blob ${digest} of ${ref}`);
      return { body: res.body, offset: 0 };
    },
  };
}
