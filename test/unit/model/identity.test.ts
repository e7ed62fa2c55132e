import { describe, expect, it } from 'vitest';
import { parseIdentities } from '../../../src/model/identity.js';

const vmDir = '/state/vms/0123456789abcdef';
const proc = {
  kind: 'process',
  pid: 4242,
  startTime: 7,
  exe: '/usr/bin/qemu',
  arg: `unix:${vmDir}/run/qmp.sock`,
};

describe('teardown identities read back', () => {
  it('keeps each kind that matches its schema exactly', () => {
    const good = [
      { kind: 'tap', name: 'tap-fc-0001' },
      { kind: 'ip', address: '172.16.0.2' },
      { kind: 'loop', device: '', backingFile: `${vmDir}/rootfs.cow` },
      proc,
      { kind: 'pidfile', path: `${vmDir}/run/vmm.pid`, arg: 'web' },
      { kind: 'file', path: `${vmDir}/work.ext4` },
    ];
    expect(parseIdentities(good, vmDir)).toEqual({ identities: good, refused: [] });
  });

  it('refuses, with a reason each, what no banger wrote, and still reads the rest', () => {
    const hostile = [
      { kind: 'bogus' },
      { kind: 'process', pid: 4242, startTime: 7 }, // no proof: exe and arg
      { ...proc, arg: '' },
      { ...proc, pid: 1 },
      { ...proc, extra: true },
      { kind: 'file', path: 'work.ext4' },
      { kind: 'file', path: `${vmDir}/../../banger.db` },
      { kind: 'file', path: '/state/banger.db' },
      { kind: 'file', path: vmDir },
      { kind: 'pidfile', path: '/state/vms/other/run/vmm.pid', arg: 'x' },
      'tap-fc-0001',
    ];
    const { identities, refused } = parseIdentities([...hostile, proc], vmDir);
    expect(identities).toEqual([proc]);
    expect(refused.map((r) => r.value)).toEqual(hostile);
    expect(refused.every((r) => r.reason.length > 0)).toBe(true);
    expect(refused[6]?.reason).toMatch(/not an absolute normal path/);
    expect(refused[7]?.reason).toMatch(/outside the VM's directory/);
  });
});
