import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createInProcessPrivOps, iptablesRules, nftAddScript } from '../../../../src/host/priv/index.js';
import { createRecordingRunner } from '../../../fixtures/recording-runner.js';

describe('in-process PrivOps validation', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'bgr-h-unit-'));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
  const runner = createRecordingRunner();
  const priv = createInProcessPrivOps({ runner, stateDir });
  const refused = async (p: Promise<unknown>) => {
    await expect(p).rejects.toMatchObject({ code: 'bad_request' });
    expect(runner.calls).toEqual([]);
  };

  it('refuses foreign names before running anything', async () => {
    await refused(priv.ensureBridge({ name: 'virbr0', ip: '10.0.0.1', prefix: 24 }));
    await refused(priv.ensureBridge({ name: 'br-fc', ip: '10.0.0.256', prefix: 24 }));
    await refused(priv.ensureBridge({ name: 'br-fc', ip: '10.0.0.1', prefix: 4 }));
    await refused(priv.deleteBridge({ name: 'eth0' }));
    await refused(priv.createTap({ name: 'tap0', bridge: 'br-fc' }));
    await refused(priv.createTap({ name: 'tap-fc-0001', bridge: 'docker0' }));
    await refused(priv.deleteTap({ name: 'eth0' }));
    await refused(priv.deleteTap({ name: 'tap-fc-0001', netns: '../../proc/1/ns/net' }));
    const nat = {
      backend: 'nft' as const,
      table: 'banger',
      tap: 'tap-fc-0001',
      guestIp: '172.16.0.2',
      uplink: 'eth0',
    };
    await refused(priv.addNat({ ...nat, table: 'filter' }));
    await refused(priv.addNat({ ...nat, uplink: 'eth0"; flush ruleset; "' }));
    await refused(priv.addNat({ ...nat, guestIp: '0x7f000001' }));
    await refused(priv.removeDm({ name: 'cryptroot' }));
    await refused(
      priv.createDmSnapshot({ name: 'banger-x', origin: '/dev/sda', cow: '/dev/loop1', sectors: 8 }),
    );
  });

  it('refuses paths outside the state dir', async () => {
    await refused(priv.attachLoop({ file: '/etc/passwd', readOnly: true }));
    await refused(priv.attachLoop({ file: join(stateDir, '..', 'x'), readOnly: false }));
    await refused(priv.detachLoop({ device: '/dev/loop0', backingFile: '/var/lib/other/disk.img' }));
  });

  it('refuses odd signals and pids', async () => {
    await refused(priv.signalProcess({ pid: 1234, startTime: 1, arg: '/s/run/qmp.sock', signal: 'STOP' }));
    await refused(priv.signalProcess({ pid: 1234, startTime: 1, arg: '/s/run/qmp.sock', signal: '9' }));
    await refused(
      priv.signalProcess({ pid: 1234, startTime: 1, arg: '/s/run/qmp.sock', signal: 'SIGRTMIN+3' }),
    );
    await refused(priv.signalProcess({ pid: 1, startTime: 1, arg: '/s/run/qmp.sock', signal: 'KILL' }));
    await refused(priv.signalProcess({ pid: -1, startTime: 1, arg: '/s/run/qmp.sock', signal: 'TERM' }));
  });

  it('refuses a signal without its whole proof: an argument to match, an absolute executable', async () => {
    await refused(priv.signalProcess({ pid: 1234, startTime: 1, arg: '', signal: 'KILL' }));
    await refused(priv.signalProcess({ pid: 1234, startTime: 1, signal: 'KILL' } as never));
    await refused(priv.signalProcess({ pid: 1234, startTime: 1, arg: 'a\0b', signal: 'KILL' }));
    await refused(priv.signalProcess({ pid: 1234, startTime: 1, arg: 'x', exe: 'qemu', signal: 'KILL' }));
  });
});

describe('NAT rule text', () => {
  const req = {
    backend: 'nft' as const,
    table: 'banger',
    tap: 'tap-fc-0003',
    guestIp: '172.16.0.4',
    uplink: 'eth0',
  };

  it('keys every nft rule by tap and guest IP in banger table, with accept policies', () => {
    expect(nftAddScript(req).trim().split('\n')).toEqual([
      'add table ip banger',
      'add chain ip banger postrouting { type nat hook postrouting priority srcnat; policy accept; }',
      'add chain ip banger forward { type filter hook forward priority filter; policy accept; }',
      'add rule ip banger postrouting ip saddr 172.16.0.4 oifname "eth0" masquerade comment "banger:tap-fc-0003:172.16.0.4"',
      'add rule ip banger forward iifname "tap-fc-0003" oifname "eth0" accept comment "banger:tap-fc-0003:172.16.0.4"',
      'add rule ip banger forward oifname "tap-fc-0003" ct state established,related accept comment "banger:tap-fc-0003:172.16.0.4"',
    ]);
  });

  it('builds the original iptables rules, tagged with the same key', () => {
    expect(iptablesRules(req).map((r) => r.join(' '))).toEqual([
      '-t nat POSTROUTING -s 172.16.0.4/32 -o eth0 -m comment --comment banger:tap-fc-0003:172.16.0.4 -j MASQUERADE',
      '-t filter FORWARD -i tap-fc-0003 -o eth0 -m comment --comment banger:tap-fc-0003:172.16.0.4 -j ACCEPT',
      '-t filter FORWARD -o tap-fc-0003 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment banger:tap-fc-0003:172.16.0.4 -j ACCEPT',
    ]);
  });
});
