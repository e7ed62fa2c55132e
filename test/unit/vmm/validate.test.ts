import { describe, expect, it } from 'vitest';
import { BangerError } from '../../../src/model/errors.js';
import { createQemuVmm, type VmmLaunchSpec } from '../../../src/vmm/index.js';
import { parseHandles, validateLaunchSpec } from '../../../src/vmm/validate.js';

const good: VmmLaunchSpec = {
  name: 'dev-1',
  runDir: '/run/vms/dev-1',
  kernelPath: '/k/vmlinuz',
  cmdline: 'root=/dev/vda',
  rootDisk: { path: '/vms/root.ext4', format: 'raw' },
  vcpus: 2,
  memoryMiB: 512,
  net: { tap: 'tap-fc-0001', mac: '02:fc:00:00:00:01' },
  agent: 'virtio-serial',
  accel: 'tcg',
};

describe('validateLaunchSpec', () => {
  it('accepts a sane spec', () => {
    expect(() => validateLaunchSpec(good)).not.toThrow();
  });

  it.each<[string, Partial<VmmLaunchSpec>, RegExp]>([
    [
      'a tap name that smuggles QEMU options',
      { net: { tap: 'tap0,script=/tmp/x', mac: '02:fc:00:00:00:01' } },
      /not a valid interface name/,
    ],
    [
      'a tap name over 15 bytes',
      { net: { tap: 'tap-0123456789abc', mac: '02:fc:00:00:00:01' } },
      /not a valid interface name/,
    ],
    ['a malformed MAC', { net: { tap: 'tap0', mac: '02:fc:00:00:00:01,id=x' } }, /MAC/],
    ['a name that is not a DNS label', { name: '../etc' }, /DNS label/],
    ['zero vCPUs', { vcpus: 0 }, /vcpus/],
    ['fractional memory', { memoryMiB: 256.5 }, /memory/],
    ['a CID below 3', { cid: 2 }, /CID/],
    ['a relative disk path', { rootDisk: { path: 'root.ext4', format: 'raw' } }, /absolute/],
    ['a multi-line command line', { cmdline: 'a\nb' }, /one line/],
    ['an unknown machine', { machine: 'pc,accel=kvm' as never }, /machine must be one of microvm, q35/],
  ])('refuses %s with bad_request', (_what, over, message) => {
    const err = (() => {
      try {
        validateLaunchSpec({ ...good, ...over });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).code).toBe('bad_request');
    expect((err as BangerError).message).toMatch(message);
  });

  it('a start cancelled before it begins is `cancelled` and spawns nothing', async () => {
    const runner = {
      run: async () => ({ stdout: '', stderr: '', exitCode: 0 }),
      spawn: () => {
        throw new Error('must not spawn');
      },
    };
    const vmm = createQemuVmm({ runner, qemuBin: 'qemu', vhostVsock: false });
    const ctl = new AbortController();
    ctl.abort();
    const err = await vmm.start(good, { signal: ctl.signal }).catch((e: unknown) => e);
    expect((err as BangerError).code).toBe('cancelled');
  });

  it('adopt() refuses edited handles with bad_request instead of acting on them', async () => {
    const vmm = createQemuVmm({
      runner: {
        run: async () => ({ stdout: '', stderr: '', exitCode: 0 }),
        spawn: () => {
          throw new Error('no');
        },
      },
      qemuBin: 'qemu',
      vhostVsock: false,
    });
    const bad = {
      kind: 'qemu',
      pid: -1,
      startTime: 0,
      controlSocket: '',
      consoleLogPath: '/x',
      agentEndpoint: { kind: 'virtio-serial', socketPath: '/x' },
    };
    const err = await vmm.adopt(bad as never).catch((e: unknown) => e);
    expect((err as BangerError).code).toBe('bad_request');
    expect(() => parseHandles({})).toThrow(/malformed/);
  });
});
