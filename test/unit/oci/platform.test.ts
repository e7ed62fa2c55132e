import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../../../src/oci/manifest.js';
import { choosePlatform, parsePlatform } from '../../../src/oci/platform.js';

const d = (n: number, os: string, architecture: string, variant?: string): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});

const index = [
  d(1, 'linux', 'amd64'),
  d(2, 'linux', 'arm64', 'v8'),
  d(3, 'linux', 'arm', 'v7'),
  d(4, 'unknown', 'unknown'),
];

describe('platform choice', () => {
  it('parses os/arch[/variant] and arch aliases', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(() => parsePlatform('amd64')).toThrow(/os\/arch\[\/variant\]/);
    expect(() => parsePlatform('linux/amd64/v1/x')).toThrow(/invalid platform/);
  });

  it('picks the matching manifest, treating arm64 and arm64/v8 alike', () => {
    expect(choosePlatform(index, parsePlatform('linux/amd64'), 'x').digest).toBe(index[0]?.digest);
    expect(choosePlatform(index, parsePlatform('linux/arm64'), 'x').digest).toBe(index[1]?.digest);
    expect(choosePlatform(index, parsePlatform('linux/arm64/v8'), 'x').digest).toBe(index[1]?.digest);
    expect(choosePlatform(index, parsePlatform('linux/arm/v7'), 'x').digest).toBe(index[2]?.digest);
  });

  it('lists what the image offers when nothing matches, skipping attestations', () => {
    expect(() => choosePlatform(index, parsePlatform('linux/s390x'), 'ghcr.io/o/n:1')).toThrow(
      'ghcr.io/o/n:1 has no image for platform linux/s390x; it offers linux/amd64, linux/arm64/v8, linux/arm/v7',
    );
    expect(() => choosePlatform(index, parsePlatform('linux/arm/v6'), 'x')).toThrow(/not_found|offers/);
  });
});
