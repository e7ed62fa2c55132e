import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { Config } from '../../config/index.js';
import type { Runner } from '../../host/index.js';
import { badRequest } from '../../model/errors.js';
import { DOCKER_HUB_API } from '../reference.js';

export interface Credentials {
  username: string;
  password: string;
}

/** Finds credentials for a registry host; undefined means "anonymous". */
export type CredentialSource = (registry: string, signal?: AbortSignal) => Promise<Credentials | undefined>;

const dockerConfigSchema = z.object({
  auths: z
    .record(
      z.string(),
      z.object({
        auth: z.string().optional(),
        username: z.string().optional(),
        password: z.string().optional(),
        identitytoken: z.string().optional(),
      }),
    )
    .optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
  credsStore: z.string().optional(),
});

const helperOutputSchema = z.object({ Username: z.string(), Secret: z.string() });

/** The keys Docker uses for Hub in config.json, oldest spelling first. */
const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', DOCKER_HUB_API];

/** `https://host:port/v1/` -> `host:port`, as Docker normalises config.json keys. */
function hostOfKey(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

function keysFor(registry: string): string[] {
  return registry === DOCKER_HUB_API ? HUB_KEYS : [registry];
}

function decodeAuth(entry: { auth?: string; username?: string; password?: string }, where: string) {
  if (entry.username !== undefined && entry.password !== undefined)
    return { username: entry.username, password: entry.password };
  if (entry.auth === undefined) return undefined;
  const text = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0)
    throw badRequest(`the auth entry for ${where} in the Docker config is not base64 of user:password`);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

async function readDockerConfig(path: string) {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined; // no Docker config is the common case
  }
  const parsed = dockerConfigSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw badRequest(`${path} is not a valid Docker config: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

async function fromHelper(
  runner: Runner,
  helper: string,
  server: string,
  signal?: AbortSignal,
): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) throw badRequest(`invalid Docker credential helper name ${helper}`);
  const r = await runner
    .run([`docker-credential-${helper}`, 'get'], {
      input: server,
      timeoutMs: 30_000,
      allowFailure: true,
      signal,
    })
    .catch(() => undefined); // helper not installed: same as "no credentials"
  if (r?.exitCode !== 0) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    return undefined;
  }
  const out = helperOutputSchema.safeParse(json);
  if (!out.success) return undefined;
  // `<token>` marks an OAuth identity token, which needs a refresh-token flow we do not implement.
  if (out.data.Username === '<token>') return undefined;
  return { username: out.data.Username, password: out.data.Secret };
}

/**
 * Credentials in banger's order: config.toml `registry_auths`, then ~/.docker/config.json the way Docker
 * reads it (`credHelpers` for the host, else `credsStore`, else `auths`). The Docker config is read on
 * each call so a `docker login` made while the daemon runs is seen.
 */
export function createCredentialSource(deps: {
  config: Pick<Config, 'registry_auths'>;
  dockerConfigPath?: string;
  runner: Runner;
}): CredentialSource {
  return async (registry, signal) => {
    for (const key of keysFor(registry)) {
      const own = deps.config.registry_auths[key];
      if (own) return own;
    }
    if (!deps.dockerConfigPath) return undefined;
    const docker = await readDockerConfig(deps.dockerConfigPath);
    if (!docker) return undefined;
    for (const key of keysFor(registry)) {
      const helper = Object.entries(docker.credHelpers ?? {}).find(
        ([k]) => hostOfKey(k) === hostOfKey(key),
      )?.[1];
      if (helper) return fromHelper(deps.runner, helper, key, signal);
    }
    for (const key of keysFor(registry)) {
      const entry = Object.entries(docker.auths ?? {}).find(([k]) => hostOfKey(k) === hostOfKey(key));
      if (!entry) continue;
      const creds = decodeAuth(entry[1], key);
      if (creds) return creds;
      if (docker.credsStore) return fromHelper(deps.runner, docker.credsStore, entry[0], signal);
    }
    if (docker.credsStore)
      return fromHelper(deps.runner, docker.credsStore, keysFor(registry)[0] ?? registry, signal);
    return undefined;
  };
}
