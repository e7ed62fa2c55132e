import { badRequest } from '../model/errors.js';

/** A parsed, normalised image reference. `registry` is the host[:port] that is contacted. */
export interface ImageReference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** The canonical spelling: `registry/repository[:tag][@digest]` (Docker Hub as `docker.io`). */
  toString(): string;
}

/** Docker Hub's familiar name and the host its API lives on. */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';
const DEFAULT_TAG = 'latest';

// The distribution spec's grammar (distribution/reference regexp.go), kept to the forms we accept.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOSTNAME =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;
/** A repository path longer than this is refused by registries (distribution's NameTotalLengthMax). */
const MAX_NAME_LENGTH = 255;

function invalid(input: string, why: string) {
  return badRequest(`invalid image reference ${JSON.stringify(input)}: ${why}`, {
    hint: 'use [registry/]repository[:tag][@sha256:<64 hex>], e.g. alpine:3.20 or ghcr.io/owner/name:tag',
  });
}

/** Docker's rule: the first path component is a registry when it has a dot, a port, or is localhost. */
function looksLikeRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first.startsWith('[') || first === 'localhost';
}

function checkRegistry(input: string, host: string): void {
  let name = host;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) throw invalid(input, `registry ${host} has an unclosed IPv6 bracket`);
    const addr = host.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(addr) || !addr.includes(':'))
      throw invalid(input, `registry ${host} is not a valid IPv6 address`);
    const rest = host.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':'))
      throw invalid(input, `unexpected text after ${host.slice(0, end + 1)}`);
    port = rest === '' ? undefined : rest.slice(1);
    name = addr;
  } else {
    const parts = host.split(':');
    if (parts.length > 2)
      throw invalid(input, `registry ${host} has more than one ':' (IPv6 needs [brackets])`);
    name = parts[0] ?? '';
    port = parts[1];
    if (!HOSTNAME.test(name))
      throw invalid(input, `registry host ${JSON.stringify(name)} is not a valid host name`);
  }
  if (port !== undefined) {
    const n = Number(port);
    if (!/^\d{1,5}$/.test(port) || n < 1 || n > 65535)
      throw invalid(input, `registry port ${JSON.stringify(port)} is not a number from 1 to 65535`);
  }
}

/**
 * Parses an image reference the way Docker does: `alpine`, `alpine:3.20`, `library/alpine`,
 * `docker.io/…` (normalised to registry-1.docker.io with `library/` for one-component names),
 * `ghcr.io/o/n:tag`, `host:port/n@sha256:…`, `localhost`, IPv4 and `[IPv6]` hosts. A reference with neither
 * tag nor digest gets the tag `latest`. Throws a `bad_request` BangerError saying what is wrong.
 */
export function parseReference(input: string): ImageReference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'it is empty');
  if (/\s/.test(s)) throw invalid(input, 'it contains whitespace');
  if (s.includes('://')) throw invalid(input, 'a reference has no scheme; drop the https:// prefix');

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digest.startsWith('sha256:'))
      throw invalid(input, `only sha256 digests are supported, got ${digest}`);
    if (!DIGEST.test(digest))
      throw invalid(input, 'the digest must be sha256: followed by 64 lowercase hex digits');
  }

  let registry = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (looksLikeRegistry(first)) {
      checkRegistry(input, first);
      registry = first;
      path = rest.slice(slash + 1);
    }
  } else if (rest.startsWith('[')) {
    throw invalid(input, 'a registry must be followed by /repository');
  }

  let tag: string | undefined;
  const lastSlash = path.lastIndexOf('/');
  const colon = path.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag))
      throw invalid(
        input,
        `tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`,
      );
  }

  if (path === '') throw invalid(input, 'the repository name is missing');
  const components = path.split('/');
  for (const c of components) {
    if (c === '') throw invalid(input, 'the repository has an empty path component (// or a trailing /)');
    if (c !== c.toLowerCase())
      throw invalid(input, `repository names must be lowercase (${JSON.stringify(c)})`);
    if (!COMPONENT.test(c))
      throw invalid(
        input,
        `repository component ${JSON.stringify(c)} may only use a-z, 0-9 and . _ - between them`,
      );
  }

  if (registry === DOCKER_HUB || registry === 'index.docker.io' || registry === DOCKER_HUB_API) {
    registry = DOCKER_HUB_API;
    if (components.length === 1) components.unshift('library');
  }
  const repository = components.join('/');
  if (repository.length > MAX_NAME_LENGTH)
    throw invalid(input, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;

  return makeReference(registry, repository, tag, digest);
}

function makeReference(registry: string, repository: string, tag?: string, digest?: string): ImageReference {
  const shown = registry === DOCKER_HUB_API ? DOCKER_HUB : registry;
  const text = `${shown}/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return {
    registry,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
    toString: () => text,
  };
}

/** The same repository at a specific digest (after resolving a tag or choosing a platform). */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  return makeReference(ref.registry, ref.repository, ref.tag, digest);
}
