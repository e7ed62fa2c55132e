import { badRequest, notFound } from '../model/errors.js';
import type { Descriptor } from './manifest.js';

/** What we pull when the caller names no platform. */
export const DEFAULT_PLATFORM = 'linux/amd64';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

// Names people type for the same architecture (uname -m vs GOARCH).
const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
};

/** Parses `os/arch[/variant]`, normalising arch aliases (x86_64 -> amd64, aarch64 -> arm64). */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p)))
    throw badRequest(`invalid platform ${JSON.stringify(s)}: use os/arch[/variant], e.g. linux/arm64`);
  const [os = '', arch = '', variant] = parts.map((p) => p.toLowerCase());
  const architecture = ARCH_ALIASES[arch] ?? arch;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** arm64 images are labelled v8 or not at all; treat both spellings as the same platform. */
function variantOf(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8')) return 'v8';
  return p.variant;
}

export function platformMatches(want: Platform, have: Platform): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  // No variant asked for: any variant of that arch will do (the index's first one wins).
  if (want.variant === undefined) return true;
  return variantOf(want) === variantOf(have);
}

/**
 * Picks the manifest for `want` from an index. Entries without a platform (attestations, artifacts) are
 * skipped. When nothing matches, the error lists what the image offers.
 */
export function choosePlatform(manifests: readonly Descriptor[], want: Platform, what: string): Descriptor {
  const candidates = manifests.filter((m) => m.platform && m.platform.os !== 'unknown');
  const hit = candidates.find((m) => m.platform && platformMatches(want, m.platform));
  if (hit) return hit;
  const offered = [...new Set(candidates.map((m) => formatPlatform(m.platform as Platform)))];
  throw notFound(
    `${what} has no image for platform ${formatPlatform(want)}; it offers ${offered.length ? offered.join(', ') : 'no platforms'}`,
    { hint: offered.length ? `choose one with --platform ${offered[0]}` : undefined },
  );
}
