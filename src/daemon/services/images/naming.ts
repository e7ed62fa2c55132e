import { randomBytes } from 'node:crypto';
import type { ImageConfig } from '../../../model/image.js';
import { validateArtifactName } from '../../../model/names.js';

/** Short random ids: directory names under <imagesDir>, unique per store. */
export function newImageId(): string {
  return randomBytes(8).toString('hex');
}

/** Whether `name` has the shape newImageId makes (so a directory of that name is one banger made). */
export function isImageId(name: string): boolean {
  return /^[0-9a-f]{16}$/.test(name);
}

/**
 * The default image name for an OCI reference, as the original: the repository's last path component plus
 * the tag (`docker.io/library/debian:bookworm` -> `debian-bookworm`), or the digest's first 12 hex digits.
 */
export function defaultImageName(ref: string): string {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1).replace(/^[a-z0-9]+:/, '');
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const repo = rest.split('/').pop() ?? rest;
  const suffix = tag ?? (digest ? digest.slice(0, 12) : undefined);
  const raw = suffix ? `${repo}-${suffix}` : repo;
  const name = raw
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128);
  return validateArtifactName('image', name);
}

/**
 * The config of an image that came without one (tar import, bundle, recipe, register): a standard PATH and
 * `/` as working directory, so `vm run IMAGE -- cmd` finds programs the way a login shell would.
 */
export const DEFAULT_IMAGE_CONFIG: ImageConfig = {
  env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  workingDir: '/',
};
