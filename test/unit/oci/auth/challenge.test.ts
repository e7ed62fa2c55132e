import { describe, expect, it } from 'vitest';
import { parseChallenge, pickChallenge } from '../../../../src/oci/auth/challenge.js';

describe('WWW-Authenticate', () => {
  it('parses a Docker Hub Bearer challenge', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/alpine:pull',
      },
    });
  });

  it('parses Basic, unquoted values, escapes and spacing', () => {
    expect(parseChallenge('Basic realm="banger-test"')).toEqual({
      scheme: 'basic',
      params: { realm: 'banger-test' },
    });
    expect(parseChallenge('bearer Realm = x , error="a \\"b\\""')).toEqual({
      scheme: 'bearer',
      params: { realm: 'x', error: 'a "b"' },
    });
    expect(parseChallenge('')).toBeUndefined();
  });

  it('prefers Bearer over Basic and ignores schemes it cannot use', () => {
    expect(pickChallenge(['Basic realm="a"', 'Bearer realm="b"'])?.scheme).toBe('bearer');
    expect(pickChallenge(['Negotiate', 'Basic realm="a"'])?.scheme).toBe('basic');
    expect(pickChallenge('Negotiate')).toBeUndefined();
    expect(pickChallenge(undefined)).toBeUndefined();
  });
});
