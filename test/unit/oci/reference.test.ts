import { describe, expect, it } from 'vitest';
import { BangerError } from '../../../src/model/errors.js';
import { parseReference } from '../../../src/oci/index.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    [
      'alpine',
      'registry-1.docker.io',
      'library/alpine',
      'latest',
      undefined,
      'docker.io/library/alpine:latest',
    ],
    [
      'alpine:3.20',
      'registry-1.docker.io',
      'library/alpine',
      '3.20',
      undefined,
      'docker.io/library/alpine:3.20',
    ],
    [
      'library/alpine',
      'registry-1.docker.io',
      'library/alpine',
      'latest',
      undefined,
      'docker.io/library/alpine:latest',
    ],
    [
      'docker.io/alpine:3.20',
      'registry-1.docker.io',
      'library/alpine',
      '3.20',
      undefined,
      'docker.io/library/alpine:3.20',
    ],
    [
      'docker.io/library/alpine',
      'registry-1.docker.io',
      'library/alpine',
      'latest',
      undefined,
      'docker.io/library/alpine:latest',
    ],
    [
      'index.docker.io/user/app:v1',
      'registry-1.docker.io',
      'user/app',
      'v1',
      undefined,
      'docker.io/user/app:v1',
    ],
    ['ghcr.io/o/n:tag', 'ghcr.io', 'o/n', 'tag', undefined, 'ghcr.io/o/n:tag'],
    ['ghcr.io/org/team/img', 'ghcr.io', 'org/team/img', 'latest', undefined, 'ghcr.io/org/team/img:latest'],
    [`host:5000/n@${D}`, 'host:5000', 'n', undefined, D, `host:5000/n@${D}`],
    [`host:5000/n:v2@${D}`, 'host:5000', 'n', 'v2', D, `host:5000/n:v2@${D}`],
    ['localhost/app', 'localhost', 'app', 'latest', undefined, 'localhost/app:latest'],
    ['localhost:5000/a/b:c', 'localhost:5000', 'a/b', 'c', undefined, 'localhost:5000/a/b:c'],
    [
      '127.0.0.1:5000/busybox:1.35',
      '127.0.0.1:5000',
      'busybox',
      '1.35',
      undefined,
      '127.0.0.1:5000/busybox:1.35',
    ],
    ['[::1]:5000/alpine:3.20', '[::1]:5000', 'alpine', '3.20', undefined, '[::1]:5000/alpine:3.20'],
    ['[fe80::1]/x', '[fe80::1]', 'x', 'latest', undefined, '[fe80::1]/x:latest'],
    [
      'my-registry.example.com/a__b/c-d.e:Tag_1.0-x',
      'my-registry.example.com',
      'a__b/c-d.e',
      'Tag_1.0-x',
      undefined,
      'my-registry.example.com/a__b/c-d.e:Tag_1.0-x',
    ],
  ])('%s', (input, registry, repository, tag, digest, text) => {
    const ref = parseReference(input);
    expect(ref.registry).toBe(registry);
    expect(ref.repository).toBe(repository);
    expect(ref.tag).toBe(tag);
    expect(ref.digest).toBe(digest);
    expect(ref.toString()).toBe(text);
    // The canonical form parses back to the same reference.
    expect(parseReference(ref.toString()).toString()).toBe(text);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['Alpine', /lowercase/],
    ['ghcr.io/Owner/img', /lowercase/],
    ['alpine:', /tag ""/],
    ['alpine:-bad', /tag "-bad"/],
    [`alpine:${'x'.repeat(129)}`, /tag/],
    ['alpine@sha256:abc', /64 lowercase hex/],
    [`alpine@sha512:${'a'.repeat(128)}`, /only sha256/],
    ['a//b', /empty path component/],
    ['alpine/', /empty path component/],
    ['ghcr.io/', /repository name is missing/],
    ['https://ghcr.io/o/n', /no scheme/],
    ['al pine', /whitespace/],
    ['host:99999/x', /port "99999"/],
    ['host:abc/x', /port "abc"/],
    ['a:b:c/x', /more than one ':'/],
    ['[::1/x', /unclosed IPv6/],
    ['[zz]:5000/x', /not a valid IPv6/],
    ['-bad.host/x', /not a valid host name/],
    ['foo/-bar', /may only use/],
    ['foo/bar..baz', /may only use/],
    [`ghcr.io/${'a'.repeat(256)}`, /longer than 255/],
  ])('rejects %j', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).code).toBe('bad_request');
    expect((err as BangerError).message).toMatch(/invalid image reference/);
    expect((err as BangerError).message).toMatch(why);
  });
});
