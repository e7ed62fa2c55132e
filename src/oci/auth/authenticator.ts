import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { BangerError, operationFailed } from '../../model/errors.js';
import { redactUrl, registryError } from '../errors.js';
import { send } from '../transport/http.js';
import { readCapped } from '../transport/read-capped.js';
import { type Challenge, pickChallenge } from './challenge.js';
import type { CredentialSource, Credentials } from './credentials.js';

const tokenSchema = z
  .object({
    token: z.string().optional(),
    access_token: z.string().optional(),
    expires_in: z.number().optional(),
  })
  .refine((t) => t.token || t.access_token, 'the token server sent no token');

/** Token lifetime when the server does not say (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Refresh this long before expiry so a token never dies in flight. */
const EXPIRY_MARGIN_MS = 10_000;
/** A token answer is a JSON object of a few KiB; anything near this is broken or hostile. */
const MAX_TOKEN_BODY = 1024 * 1024;

export interface Authenticator {
  /** Remembers the challenge a `/v2/` ping answered with, so the first real request carries auth. */
  learn(registry: string, wwwAuthenticate: string | string[] | undefined): void;
  /** The Authorization header for `registry` and `scope` from what we already know, if any. */
  header(registry: string, scope: string, signal?: AbortSignal): Promise<string | undefined>;
  /** A 401 arrived: learn its challenge, forget a stale token, and return the header to retry with. */
  onUnauthorized(
    registry: string,
    scope: string,
    wwwAuthenticate: string | string[] | undefined,
    signal?: AbortSignal,
  ): Promise<string>;
}

export function loginHint(registry: string): string {
  return `add credentials for ${registry} to registry_auths in config.toml, or run \`docker login ${registry}\``;
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

function hostnameOf(registry: string): string {
  return new URL(`http://${registry}`).hostname;
}

/**
 * Bearer and Basic auth after the distribution spec: a challenge per registry, tokens cached per
 * (registry, scope) until shortly before they expire. The token realm must be on the registry's own
 * host unless it is HTTPS, so a hostile registry cannot send our credentials in clear to a third host.
 */
export function createAuthenticator(deps: {
  dispatcher: Dispatcher;
  credentials: CredentialSource;
}): Authenticator {
  const challenges = new Map<string, Challenge>();
  const tokens = new Map<string, { header: string; expiresAt: number }>();

  async function credsOrNone(registry: string, signal?: AbortSignal) {
    return deps.credentials(registry, signal);
  }

  async function fetchToken(
    registry: string,
    scope: string,
    ch: Challenge,
    signal?: AbortSignal,
  ): Promise<string> {
    const realm = ch.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw operationFailed(
        `registry ${registry} sent a Bearer challenge with no usable realm (${realm ?? 'none'})`,
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw operationFailed(`registry ${registry} named token realm ${redactUrl(url)}, which is not HTTP(S)`);
    if (url.protocol === 'http:' && url.hostname !== hostnameOf(registry))
      throw operationFailed(
        `registry ${registry} sent its token realm to another host over plain HTTP (${redactUrl(url)}); refused`,
        { hint: 'a token service on another host must use HTTPS' },
      );
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    url.searchParams.set('scope', scope);
    const creds = await credsOrNone(registry, signal);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = basic(creds);
    const res = await send(deps.dispatcher, url, { headers, signal });
    if (res.statusCode !== 200) {
      throw await registryError(res, url, `token request for ${registry}`, loginHint(registry));
    }
    const body = await readCapped(res, MAX_TOKEN_BODY, () =>
      operationFailed(`token answer from ${redactUrl(url)} is over the ${MAX_TOKEN_BODY}-byte limit`, {
        hint: `the token service of ${registry} is broken or hostile; a real token answer is a few KiB`,
      }),
    );
    let parsed: z.infer<typeof tokenSchema>;
    try {
      parsed = tokenSchema.parse(JSON.parse(body.toString('utf8')));
    } catch {
      throw operationFailed(`token answer from ${redactUrl(url)} is not a token`);
    }
    const token = parsed.token ?? parsed.access_token ?? '';
    const seconds = parsed.expires_in ?? DEFAULT_TOKEN_SECONDS;
    const header = `Bearer ${token}`;
    tokens.set(`${registry} ${scope}`, { header, expiresAt: Date.now() + seconds * 1000 - EXPIRY_MARGIN_MS });
    return header;
  }

  async function headerFor(
    registry: string,
    scope: string,
    ch: Challenge,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    if (ch.scheme === 'basic') {
      const creds = await credsOrNone(registry, signal);
      return creds ? basic(creds) : undefined;
    }
    const cached = tokens.get(`${registry} ${scope}`);
    if (cached && cached.expiresAt > Date.now()) return cached.header;
    return fetchToken(registry, scope, ch, signal);
  }

  return {
    learn(registry, wwwAuthenticate) {
      const ch = pickChallenge(wwwAuthenticate);
      if (ch) challenges.set(registry, ch);
    },
    async header(registry, scope, signal) {
      const ch = challenges.get(registry);
      return ch ? headerFor(registry, scope, ch, signal) : undefined;
    },
    async onUnauthorized(registry, scope, wwwAuthenticate, signal) {
      const ch = pickChallenge(wwwAuthenticate);
      if (!ch)
        throw new BangerError(
          'unauthorized',
          `registry ${registry} refused access and offered no usable login method`,
          {
            hint: loginHint(registry),
          },
        );
      challenges.set(registry, ch);
      tokens.delete(`${registry} ${scope}`);
      const header = await headerFor(registry, scope, ch, signal);
      if (!header)
        throw new BangerError(
          'unauthorized',
          `registry ${registry} needs a login and banger has no credentials for it`,
          {
            hint: loginHint(registry),
          },
        );
      return header;
    },
  };
}
