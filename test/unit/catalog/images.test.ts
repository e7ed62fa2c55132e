import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  embeddedImageCatalogPath,
  findImageEntry,
  parseImageCatalog,
} from '../../../src/catalog/images/index.js';

describe('the image catalog', () => {
  it('ships a valid embedded catalog whose default entry is the debootstrap recipe', () => {
    const catalog = parseImageCatalog(readFileSync(embeddedImageCatalogPath(), 'utf8'), 'embedded');
    const entry = findImageEntry(catalog, 'debian-bookworm');
    expect(entry).toMatchObject({
      kind: 'recipe',
      builder: 'debootstrap',
      suite: 'bookworm',
      kernelRef: 'debian-cloud-amd64',
    });
    if (entry.kind !== 'recipe') throw new Error('unreachable');
    for (const p of [
      'systemd',
      'udev',
      'dbus',
      'openssh-server',
      'iproute2',
      'ca-certificates',
      'curl',
      'git',
      'sudo',
      'less',
      'procps',
    ]) {
      expect(entry.packages).toContain(p);
    }
  });

  it('names what is wrong in a bad catalog', () => {
    expect(() => parseImageCatalog('{', 'x.json')).toThrow(/image catalog x.json is not JSON/);
    const dup = {
      kind: 'bundle',
      distro: 'd',
      arch: 'x86_64',
      url: 'https://e/b',
      sha256: 'a'.repeat(64),
      sizeBytes: 1,
    };
    expect(() =>
      parseImageCatalog(
        JSON.stringify({
          version: 1,
          entries: [
            { name: 'a', ...dup },
            { name: 'a', ...dup },
          ],
        }),
        'x',
      ),
    ).toThrow(/names must be unique/);
    expect(() =>
      parseImageCatalog(JSON.stringify({ version: 1, entries: [{ name: '../x', ...dup }] }), 'x'),
    ).toThrow(/an image name/);
    expect(() =>
      parseImageCatalog(
        JSON.stringify({ version: 1, entries: [{ name: 'a', ...dup, sha256: 'nope' }] }),
        'x',
      ),
    ).toThrow(/invalid/);
  });

  it('lists the catalog when a name is unknown', () => {
    const catalog = parseImageCatalog(readFileSync(embeddedImageCatalogPath(), 'utf8'), 'embedded');
    expect(() => findImageEntry(catalog, 'nope')).toThrow(
      /image nope is not in the catalog; available: debian-bookworm/,
    );
  });
});
