import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../../src/oci/manifest.js';
import { MEDIA } from '../../../src/oci/media-types.js';

const digest = `sha256:${'b'.repeat(64)}`;
const desc = { mediaType: 'x', digest, size: 1 };
const buf = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('parseManifest', () => {
  it('classifies OCI and Docker manifests and indexes by mediaType, header or shape', () => {
    expect(
      parseManifest(
        buf({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: desc, layers: [desc] }),
        undefined,
        'x',
      ).kind,
    ).toBe('image');
    expect(
      parseManifest(buf({ schemaVersion: 2, config: desc, layers: [] }), MEDIA.ociManifest, 'x').kind,
    ).toBe('image');
    expect(parseManifest(buf({ schemaVersion: 2, manifests: [desc] }), 'application/json', 'x').kind).toBe(
      'index',
    );
    expect(
      parseManifest(buf({ schemaVersion: 2, mediaType: MEDIA.dockerList, manifests: [] }), undefined, 'x')
        .kind,
    ).toBe('index');
  });

  it('refuses schema 1 by name', () => {
    expect(() =>
      parseManifest(buf({ schemaVersion: 1, name: 'x', fsLayers: [] }), MEDIA.dockerSchema1Signed, 'img'),
    ).toThrow(/img uses the Docker schema 1 manifest format/);
  });

  it('refuses unknown media types, bad JSON and malformed manifests', () => {
    expect(() =>
      parseManifest(buf({ schemaVersion: 2, mediaType: 'application/vnd.cncf.helm.chart' }), undefined, 'x'),
    ).toThrow(/unsupported manifest media type "application\/vnd.cncf.helm.chart"/);
    expect(() => parseManifest(Buffer.from('{nope'), undefined, 'x')).toThrow(/not valid JSON/);
    expect(() =>
      parseManifest(
        buf({
          schemaVersion: 2,
          mediaType: MEDIA.ociManifest,
          config: { ...desc, digest: 'md5:1' },
          layers: [],
        }),
        undefined,
        'x',
      ),
    ).toThrow(/malformed/);
  });
});
