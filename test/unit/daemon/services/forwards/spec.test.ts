import { describe, expect, it } from 'vitest';
import { parseForwardSpec } from '../../../../../src/daemon/services/forwards/index.js';

describe('parseForwardSpec', () => {
  it('defaults the host address to loopback', () => {
    expect(parseForwardSpec('18080:8080')).toEqual({
      hostAddress: '127.0.0.1',
      hostPort: 18080,
      guestPort: 8080,
    });
  });

  it('takes an IPv4 address, a bracketed IPv6 one, and host port 0', () => {
    expect(parseForwardSpec('0.0.0.0:8080:80')).toEqual({
      hostAddress: '0.0.0.0',
      hostPort: 8080,
      guestPort: 80,
    });
    expect(parseForwardSpec('[::1]:0:22')).toEqual({ hostAddress: '::1', hostPort: 0, guestPort: 22 });
  });

  it.each([
    ['8080', /HOST_PORT:GUEST_PORT/],
    ['a:1:2', /HOST_PORT:GUEST_PORT/],
    ['::1:80:80', /HOST_PORT:GUEST_PORT/],
    ['1.2.3:80:80', /not an IP address/],
    ['[zz::1]:80:80', /HOST_PORT:GUEST_PORT/],
    ['70000:80', /host port 70000 is out of range/],
    ['8080:0', /guest port 0 is out of range/],
    ['8080:99999', /guest port 99999 is out of range/],
  ])('refuses %s', (spec, message) => {
    expect(() => parseForwardSpec(spec)).toThrow(message);
    try {
      parseForwardSpec(spec);
    } catch (err) {
      expect(err).toMatchObject({ code: 'bad_request' });
    }
  });
});
