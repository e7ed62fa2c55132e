import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import pLimit from 'p-limit';
import { Agent } from 'undici';
import type { Config } from '../config/index.js';
import { createRunner, type Runner } from '../host/index.js';
import { BangerError, badRequest, operationFailed } from '../model/errors.js';
import type { ImageConfig } from '../model/image.js';
import type { LayerSource } from '../model/layer.js';
import { type ProgressSink, silentProgress } from '../model/progress.js';
import { createAuthenticator } from './auth/authenticator.js';
import { createCredentialSource } from './auth/credentials.js';
import { createBlobCache } from './cache.js';
import { type Descriptor, type ImageConfigBlob, imageConfigBlobSchema, parseManifest } from './manifest.js';
import { choosePlatform, DEFAULT_PLATFORM, formatPlatform, parsePlatform } from './platform.js';
import { type ImageReference, parseReference } from './reference.js';
import { createRegistryClient, type RegistryClient } from './registry.js';

/** An image resolved to one platform, its blobs verified and in the cache, pinned until `release()`. */
export interface PulledImage {
  /** The canonical reference pulled, e.g. docker.io/library/alpine:3.20. */
  reference: string;
  /** Digest of the platform's image manifest. */
  manifestDigest: string;
  /** os/arch[/variant] of the image pulled. */
  platform: string;
  config: ImageConfig;
  /** Oldest first; each `open()` streams from the verified cache. */
  layers: LayerSource[];
  /** Drops the pin that protects these blobs from `pruneCache()`. */
  release(): Promise<void>;
}

export interface PullOptions {
  /** os/arch[/variant]; linux/amd64 when absent. */
  platform?: string;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface OciPuller {
  pull(ref: string, opts?: PullOptions): Promise<PulledImage>;
  /** Bytes held by the blob cache. */
  cacheSize(): Promise<number>;
  /** Removes every blob no unreleased pull is using; `dryRun` only counts. Safe while pulls run. */
  pruneCache(opts?: { dryRun?: boolean }): Promise<{ removed: number; bytes: number }>;
  /** Closes pooled connections (the daemon calls it at shutdown). */
  close(): Promise<void>;
}

export interface OciPullerDeps {
  /** The OCI cache root (paths.ociDir); blobs live in <cacheDir>/blobs/sha256/<hex>. */
  cacheDir: string;
  config: Pick<Config, 'insecure_registries' | 'registry_ca_files' | 'registry_auths'>;
  runner?: Runner;
  /** Docker's config.json for credentials: ~/.docker/config.json when absent, none when null. */
  dockerConfigPath?: string | null;
}

/** Layers downloaded at once: enough to fill a link, few enough not to thrash a small registry. */
const LAYER_CONCURRENCY = 3;
/** Image configs are small JSON; a bigger one is hostile. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
/** Progress events per blob are throttled to one per this many bytes (plus the last). */
const PROGRESS_STEP = 1024 * 1024;

function toImageConfig(blob: ImageConfigBlob): ImageConfig {
  const c = blob.config ?? {};
  const out: ImageConfig = {};
  if (c.Env) out.env = c.Env;
  if (c.Entrypoint) out.entrypoint = c.Entrypoint;
  if (c.Cmd) out.cmd = c.Cmd;
  if (c.WorkingDir) out.workingDir = c.WorkingDir;
  if (c.User) out.user = c.User;
  return out;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function makeDispatcher(config: Pick<Config, 'registry_ca_files'>): Promise<Agent> {
  if (config.registry_ca_files.length === 0) return new Agent();
  const extra = await Promise.all(
    config.registry_ca_files.map((f) =>
      readFile(f, 'utf8').catch((err: unknown) => {
        throw badRequest(`registry CA file ${f} cannot be read`, { cause: err });
      }),
    ),
  );
  // Node's `ca` replaces the default trust store, so keep the system roots beside the extra CAs.
  return new Agent({ connect: { ca: [...rootCertificates, ...extra] } });
}

/** Resolves a reference to one platform's image manifest, following an index when there is one. */
async function resolveManifest(
  client: RegistryClient,
  ref: ImageReference,
  platform: string,
  signal?: AbortSignal,
) {
  const want = parsePlatform(platform);
  const what = `${ref}`;
  const first = await client.getManifest(ref, ref.digest ?? ref.tag ?? 'latest', signal);
  let parsed = parseManifest(first.body, first.contentType, what);
  let digest = first.digest;
  if (parsed.kind === 'index') {
    const chosen: Descriptor = choosePlatform(parsed.index.manifests, want, what);
    const next = await client.getManifest(ref, chosen.digest, signal);
    parsed = parseManifest(next.body, next.contentType, what);
    digest = next.digest;
    if (parsed.kind !== 'image')
      throw operationFailed(`${what}: index entry ${chosen.digest} is itself an index`);
  }
  return { manifest: parsed.manifest, digest, want };
}

/** Builds the puller the images service uses: registry client, auth, and the blob cache under cacheDir. */
export function createOciPuller(deps: OciPullerDeps): OciPuller {
  const cache = createBlobCache(deps.cacheDir);
  const runner = deps.runner ?? createRunner();
  const dockerConfigPath =
    deps.dockerConfigPath === undefined ? join(homedir(), '.docker', 'config.json') : deps.dockerConfigPath;
  const credentials = createCredentialSource({
    config: deps.config,
    ...(dockerConfigPath === null ? {} : { dockerConfigPath }),
    runner,
  });
  let clientPromise: Promise<{ client: RegistryClient; agent: Agent }> | undefined;

  function client() {
    clientPromise ??= (async () => {
      const agent = await makeDispatcher(deps.config);
      const auth = createAuthenticator({ dispatcher: agent, credentials });
      return { agent, client: createRegistryClient({ config: deps.config, dispatcher: agent, auth }) };
    })();
    return clientPromise;
  }

  async function pull(input: string, opts: PullOptions = {}): Promise<PulledImage> {
    const progress = opts.progress ?? silentProgress;
    const signal = opts.signal;
    const ref = parseReference(input);
    const platformWanted = opts.platform ?? DEFAULT_PLATFORM;
    const { client: registry } = await client();
    progress({ kind: 'stage', stage: 'resolve', message: `resolving ${ref}` });
    const { manifest, digest, want } = await resolveManifest(registry, ref, platformWanted, signal);

    const blobs = [manifest.config, ...manifest.layers];
    const release = await cache.pin(blobs.map((b) => b.digest));
    try {
      const fetchBlob = (d: Descriptor) => (s: AbortSignal, offset: number) =>
        registry.openBlob(ref, d.digest, s, offset);
      if (manifest.config.size > MAX_CONFIG_BYTES) throw badRequest(`image config of ${ref} is too large`);
      await cache.ensure(manifest.config, fetchBlob(manifest.config), { signal });
      const configJson = await readAll(cache.open(manifest.config));
      const configParsed = imageConfigBlobSchema.safeParse(JSON.parse(configJson.toString('utf8')));
      if (!configParsed.success) throw operationFailed(`image config of ${ref} is malformed`);
      const cfg = configParsed.data;
      if (cfg.os && cfg.architecture && (cfg.os !== want.os || cfg.architecture !== want.architecture))
        throw badRequest(`${ref} is built for ${cfg.os}/${cfg.architecture}, not ${formatPlatform(want)}`, {
          hint: `choose it with --platform ${cfg.os}/${cfg.architecture}`,
        });

      progress({
        kind: 'stage',
        stage: 'download',
        message: `pulling ${manifest.layers.length} layer(s) of ${ref}`,
      });
      const total = manifest.layers.reduce((n, l) => n + l.size, 0);
      const doneBy = new Map<string, number>();
      const limit = pLimit(LAYER_CONCURRENCY);
      // One failing layer stops the others; every layer settles (temp files gone) before we return.
      const layersDone = new AbortController();
      const stopAll = () => layersDone.abort(signal?.reason);
      signal?.addEventListener('abort', stopAll, { once: true });
      const results = await Promise.allSettled(
        manifest.layers.map((layer) =>
          limit(async () => {
            let last = -1;
            await cache
              .ensure(layer, fetchBlob(layer), {
                signal: layersDone.signal,
                onBytes: (done) => {
                  if (done - last < PROGRESS_STEP && done !== layer.size) return;
                  last = done;
                  doneBy.set(layer.digest, done);
                  progress({ kind: 'bytes', stage: 'download', item: layer.digest, done, total: layer.size });
                  let all = 0;
                  for (const n of doneBy.values()) all += n;
                  progress({ kind: 'bytes', stage: 'download', done: all, total });
                },
              })
              .catch((err: unknown) => {
                layersDone.abort(err);
                throw err;
              });
          }),
        ),
      );
      signal?.removeEventListener('abort', stopAll);
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      // The first real failure, not the cancellations it caused in its siblings.
      const cause =
        failures.find((e) => !(e instanceof BangerError && e.code === 'cancelled')) ?? failures[0];
      if (cause !== undefined) throw cause;
      const platform = formatPlatform({
        os: cfg.os ?? want.os,
        architecture: cfg.architecture ?? want.architecture,
        ...((cfg.variant ?? want.variant) ? { variant: cfg.variant ?? want.variant } : {}),
      });
      const layers: LayerSource[] = manifest.layers.map((l) => ({
        digest: l.digest,
        mediaType: l.mediaType,
        size: l.size,
        open: async () => cache.open(l),
      }));
      return {
        reference: ref.toString(),
        manifestDigest: digest,
        platform,
        config: toImageConfig(cfg),
        layers,
        release: async () => release(),
      };
    } catch (err) {
      release();
      if (signal?.aborted && !(err instanceof BangerError && err.code === 'cancelled'))
        throw new BangerError('cancelled', `pull of ${ref} cancelled`, { cause: err });
      throw err;
    }
  }

  return {
    pull,
    cacheSize: () => cache.size(),
    pruneCache: (opts) => cache.prune(opts),
    async close() {
      if (clientPromise) await (await clientPromise).agent.close();
    },
  };
}
