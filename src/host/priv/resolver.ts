import { existsSync } from 'node:fs';
import { badRequest } from '../../model/errors.js';
import type { Runner } from '../runner.js';
import { findExecutable } from '../which.js';
import type { ResolverRouteRequest } from './types.js';
import { validateBridgeName, validateIPv4 } from './validate.js';

/** The routing domain banger asks for: `~vm` sends `*.vm` queries to the link's server and nothing else. */
export const RESOLVER_ROUTING_DOMAIN = '~vm';
/** systemd-resolved's varlink socket: present while resolved runs. */
const RESOLVED_SOCKET = '/run/systemd/resolve/io.systemd.Resolve';

/** True where systemd-resolved runs and `resolvectl` can talk to it (read-only check; doctor and the daemon). */
export function resolvedRunning(): boolean {
  return existsSync(RESOLVED_SOCKET) && findExecutable('resolvectl') !== undefined;
}

/** The request, checked: banger's bridge only, and a loopback server (the daemon's own DNS). */
export function validateResolverRoute(req: ResolverRouteRequest): ResolverRouteRequest {
  const link = validateBridgeName(req.link);
  const host = validateIPv4(req.host);
  if (!host.startsWith('127.')) {
    throw badRequest(`refusing resolver routing to ${host}: not a loopback address`, {
      hint: "dns_addr must be the daemon's own loopback address",
    });
  }
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535)
    throw badRequest(`invalid DNS port ${JSON.stringify(req.port)}`);
  return { link, host, port: req.port };
}

/** The two resolvectl calls, in order: the link's DNS server, then its routing-only domain. */
export function resolverRouteArgv(req: ResolverRouteRequest): string[][] {
  return [
    ['resolvectl', 'dns', req.link, `${req.host}:${req.port}`],
    ['resolvectl', 'domain', req.link, RESOLVER_ROUTING_DOMAIN],
  ];
}

/**
 * Points systemd-resolved's per-link DNS for banger's bridge at the daemon and routes `~vm` there, so
 * `NAME.vm` resolves host-wide while every other name keeps its usual servers. Resolved forgets it when
 * the link goes away; the next daemon start (or VM start) sets it again.
 */
export async function routeResolver(runner: Runner, req: ResolverRouteRequest): Promise<void> {
  for (const argv of resolverRouteArgv(validateResolverRoute(req))) await runner.run(argv);
}
