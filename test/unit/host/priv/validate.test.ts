import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  validateBridgeName,
  validateDmName,
  validateIfaceName,
  validateIPv4,
  validateLoopDevice,
  validatePathUnder,
  validatePrefix,
  validateSignal,
  validateTableName,
  validateTapName,
} from '../../../../src/host/priv/index.js';

const refused = (fn: () => unknown) => expect(fn).toThrow(expect.objectContaining({ code: 'bad_request' }));

describe('interface names', () => {
  it('accepts banger bridges and refuses foreign or over-long ones', () => {
    expect(validateBridgeName('br-fc')).toBe('br-fc');
    expect(validateBridgeName('br-fc-dev')).toBe('br-fc-dev');
    for (const bad of ['docker0', 'br-fcx', 'br-fc-', 'br0', 'br-fc-1234567890', 'br-fc/x', '']) {
      refused(() => validateBridgeName(bad));
    }
  });

  it('accepts tap-fc-NNNN only', () => {
    expect(validateTapName('tap-fc-0001')).toBe('tap-fc-0001');
    for (const bad of ['tap0', 'tap-fc-1', 'tap-fc-abcd', 'vnet0', 'tap-fc-0001 ', 'tap-fc-123456789']) {
      refused(() => validateTapName(bad));
    }
  });

  it('limits any interface name to 15 bytes, counting UTF-8 bytes', () => {
    expect(validateIfaceName('a'.repeat(15))).toHaveLength(15);
    refused(() => validateIfaceName('a'.repeat(16)));
    refused(() => validateIfaceName('ééééééééé'));
    refused(() => validateIfaceName('eth0:1'));
  });

  it('accepts only banger device-mapper, loop and nft table names', () => {
    expect(validateDmName('banger-vm1')).toBe('banger-vm1');
    refused(() => validateDmName('vg0-root'));
    expect(validateLoopDevice('/dev/loop12')).toBe('/dev/loop12');
    refused(() => validateLoopDevice('/dev/sda'));
    refused(() => validateLoopDevice('/dev/loop1/../sda'));
    expect(validateTableName('banger')).toBe('banger');
    refused(() => validateTableName('filter'));
  });
});

describe('addresses', () => {
  it('accepts dotted-quad IPv4 and refuses the rest', () => {
    expect(validateIPv4('172.16.0.1')).toBe('172.16.0.1');
    for (const bad of ['256.1.1.1', '1.2.3', '01.2.3.4', '::1', '1.2.3.4/24', ' 1.2.3.4', '']) {
      refused(() => validateIPv4(bad));
    }
  });

  it('accepts prefixes 8 to 32', () => {
    expect(validatePrefix(8)).toBe(8);
    expect(validatePrefix('32')).toBe(32);
    for (const bad of [7, 33, 24.5, '24x', '']) refused(() => validatePrefix(bad));
  });
});

describe('signals', () => {
  it('allows the list case-insensitively, with or without SIG', () => {
    expect(validateSignal('term')).toBe('SIGTERM');
    expect(validateSignal('SIGKILL')).toBe('SIGKILL');
    expect(validateSignal('SigUsr1')).toBe('SIGUSR1');
    for (const s of ['INT', 'HUP', 'QUIT', 'USR2', 'ABRT']) expect(validateSignal(s)).toBe(`SIG${s}`);
  });

  it('refuses STOP, CONT, numeric, real-time and unknown signals', () => {
    for (const bad of ['STOP', 'SIGCONT', '9', '15', 'SIGRTMIN', 'RTMIN+1', 'SIGSEGV', 'TSTP', '']) {
      refused(() => validateSignal(bad));
    }
  });
});

describe('paths under the state dir', () => {
  const root = mkdtempSync(join(tmpdir(), 'bgr-h-unit-'));
  const state = join(root, 'state');
  mkdirSync(join(state, 'vms'), { recursive: true });
  writeFileSync(join(root, 'secret'), 'x');
  symlinkSync(join(root, 'secret'), join(state, 'vms', 'escape'));
  symlinkSync(root, join(state, 'vms', 'dir-escape'));
  symlinkSync(join(root, 'nowhere'), join(state, 'vms', 'dangling'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('accepts files (existing or not) inside it', () => {
    expect(validatePathUnder(state, join(state, 'vms', 'a.cow'))).toBe(join(state, 'vms', 'a.cow'));
    expect(validatePathUnder(state, join(state, 'vms', 'new', 'deeper'))).toBe(
      join(state, 'vms', 'new', 'deeper'),
    );
  });

  it('refuses relative paths, traversal, the dir itself and symlinks that escape', () => {
    refused(() => validatePathUnder(state, 'vms/a.cow'));
    refused(() => validatePathUnder(state, join(state, '..', 'secret')));
    refused(() => validatePathUnder(state, state));
    refused(() => validatePathUnder(state, '/etc/shadow'));
    refused(() => validatePathUnder(state, join(state, 'vms', 'escape')));
    refused(() => validatePathUnder(state, join(state, 'vms', 'dir-escape', 'secret')));
    refused(() => validatePathUnder(state, join(state, 'vms', 'dangling')));
  });
});
