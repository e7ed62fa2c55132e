/**
 * The daemon's posture check (src/daemon/posture.ts): system mode refuses root; an unprivileged daemon
 * needs its helper and cannot use config netns; root without --system is the root user mode.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/index.js';
import { checkPosture } from '../../../src/daemon/posture.js';

const plain = parseConfig('');
const split = parseConfig('priv_helper_socket = "/run/banger-root/bangerd-root.sock"\n');
const splitNetns = parseConfig('priv_helper_socket = "/run/banger-root/bangerd-root.sock"\nnetns = "lab"\n');

describe('checkPosture', () => {
  it('runs as root in the user mode, with or without a helper', () => {
    expect(checkPosture({ config: plain, euid: 0, system: false })).toBe('root');
    expect(checkPosture({ config: split, euid: 0, system: false })).toBe('root');
  });

  it('refuses root in system mode, saying what to run instead', () => {
    for (const config of [plain, split]) {
      expect(() => checkPosture({ config, euid: 0, system: true })).toThrow(
        expect.objectContaining({
          code: 'unauthorized',
          message: 'bangerd --system refuses to run as root',
          hint: expect.stringContaining('banger system run --owner USER'),
        }),
      );
    }
  });

  it('runs as the owner with a helper, in system mode or not', () => {
    expect(checkPosture({ config: split, euid: 1000, system: true })).toBe('owner');
    expect(checkPosture({ config: split, euid: 1000, system: false })).toBe('owner');
  });

  it('refuses an unprivileged daemon without a helper', () => {
    expect(() => checkPosture({ config: plain, euid: 1000, system: true })).toThrow(
      /bangerd runs as uid 1000 but no root helper is configured/,
    );
  });

  it('refuses config netns for an unprivileged daemon, naming the way that works', () => {
    expect(() => checkPosture({ config: splitNetns, euid: 1000, system: true })).toThrow(
      expect.objectContaining({
        message: 'config netns = "lab" needs root: this daemon runs as its owner',
        hint: expect.stringContaining('ip netns exec lab banger system run --owner USER'),
      }),
    );
  });
});
