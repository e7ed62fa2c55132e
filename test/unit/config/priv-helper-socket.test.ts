import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/index.js';

describe('priv_helper_socket', () => {
  it('is empty (in-process privileged operations) by default and takes an absolute socket path', () => {
    expect(parseConfig('').priv_helper_socket).toBe('');
    expect(parseConfig('priv_helper_socket = "/run/banger-root/bangerd-root.sock"').priv_helper_socket).toBe(
      '/run/banger-root/bangerd-root.sock',
    );
  });

  it('refuses a relative path and one too long for a unix socket', () => {
    expect(() => parseConfig('priv_helper_socket = "run/x.sock"')).toThrow(/absolute socket path/);
    expect(() => parseConfig(`priv_helper_socket = "/${'a'.repeat(110)}"`)).toThrow(/absolute socket path/);
  });
});
