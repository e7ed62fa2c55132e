import { describe, expect, it } from 'vitest';
import { detectNatBackend, planNat } from '../../../../src/host/net/index.js';
import { CommandError } from '../../../../src/host/runner.js';
import { createRecordingRunner } from '../../../fixtures/recording-runner.js';

describe('planNat', () => {
  it('records backend, table and the default route device before touching the host', async () => {
    const runner = createRecordingRunner([
      [/^nft --version/, { stdout: 'nftables v1.0.6\n' }],
      [/^ip -j -4 route show default/, { stdout: '[{"dst":"default","gateway":"10.0.0.1","dev":"enp1s0"}]' }],
    ]);
    const id = await planNat({ runner }, { tap: 'tap-fc-0002', guestIp: '172.16.0.3', netns: 'ns1' });
    expect(id).toEqual({
      kind: 'nat',
      table: 'banger',
      tap: 'tap-fc-0002',
      guestIp: '172.16.0.3',
      backend: 'nft',
      uplink: 'enp1s0',
      netns: 'ns1',
    });
    expect(runner.commands()).toEqual(['ip -j -4 route show default', 'nft --version']);
  });

  it('refuses NAT without a default route, saying what to do', async () => {
    const runner = createRecordingRunner([[/^ip -j -4 route show default/, { stdout: '[]' }]]);
    await expect(planNat({ runner }, { tap: 'tap-fc-0002', guestIp: '172.16.0.3' })).rejects.toMatchObject({
      code: 'operation_failed',
      hint: expect.stringMatching(/default route/),
    });
  });
});

describe('detectNatBackend', () => {
  it('falls back to iptables when nft cannot start', async () => {
    const runner = createRecordingRunner();
    runner.run = async (argv) => {
      throw new CommandError(argv, undefined, '', 'could not start (ENOENT)');
    };
    expect(await detectNatBackend(runner)).toBe('iptables');
  });
});
