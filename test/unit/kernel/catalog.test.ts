import { describe, expect, it } from 'vitest';
import {
  findCatalogEntry,
  loadKernelCatalog,
  parseKernelCatalog,
} from '../../../src/catalog/kernels/index.js';

const tarball = {
  name: 'generic-6.12',
  kind: 'tarball',
  distro: 'generic',
  arch: 'x86_64',
  kernelVersion: '6.12.7',
  url: 'https://kernels.example.com/generic-6.12-x86_64.tar.zst',
  sha256: 'a'.repeat(64),
  sizeBytes: 12345,
};

describe('kernel catalog', () => {
  it('embeds the Debian cloud kernel as a package entry, never a pinned version', async () => {
    const catalog = await loadKernelCatalog();
    const entry = findCatalogEntry(catalog, 'debian-cloud-amd64');
    expect(entry).toMatchObject({
      kind: 'debian-package',
      package: 'linux-image-cloud-amd64',
      arch: 'x86_64',
    });
  });

  it('accepts tarball and package entries', () => {
    const c = parseKernelCatalog(JSON.stringify({ version: 1, entries: [tarball] }), 'test');
    expect(c.entries[0]).toMatchObject({ ...tarball, description: '' });
  });

  it.each([
    ['a duplicate name', { version: 1, entries: [tarball, tarball] }, /unique/],
    ['a traversal name', { version: 1, entries: [{ ...tarball, name: '../x' }] }, /kernel name/],
    ['a bad digest', { version: 1, entries: [{ ...tarball, sha256: 'xyz' }] }, /sha256/],
    ['an unknown kind', { version: 1, entries: [{ ...tarball, kind: 'iso' }] }, /invalid/],
    ['an unknown field', { version: 1, entries: [{ ...tarball, extra: 1 }] }, /extra/],
    ['a version 2 file', { version: 2, entries: [] }, /version/],
  ])('rejects %s', (_what, json, message) => {
    expect(() => parseKernelCatalog(JSON.stringify(json), 'test')).toThrow(message);
  });

  it('rejects text that is not JSON, naming its origin', () => {
    expect(() => parseKernelCatalog('{', '/etc/x.json')).toThrow(/kernel catalog \/etc\/x\.json is not JSON/);
  });

  it('refuses a plain-http override that is not loopback', async () => {
    await expect(loadKernelCatalog({ override: 'http://example.com/catalog.json' })).rejects.toThrow(
      /must use https/,
    );
  });

  it('lists what is available when a name is unknown', () => {
    const c = parseKernelCatalog(JSON.stringify({ version: 1, entries: [tarball] }), 'test');
    expect(() => findCatalogEntry(c, 'nope')).toThrow(
      'kernel nope is not in the catalog; available: generic-6.12',
    );
  });
});
