import { describe, expect, it } from 'vitest';
import {
  firecrackerConfigCalls,
  firecrackerRunFiles,
  parseVersion,
  versionAtLeast,
} from '../../../../src/vmm/firecracker/config.js';
import { jailedNames, jailerArgv, jailerChrootRoot } from '../../../../src/vmm/firecracker/jailer.js';
import type { VmmLaunchSpec } from '../../../../src/vmm/types.js';

const spec: VmmLaunchSpec = {
  name: 'dev',
  runDir: '/run/vms/dev',
  kernelPath: '/k/vmlinux',
  cmdline: 'console=ttyS0 reboot=k',
  rootDisk: { path: '/vms/dev/root.ext4', format: 'raw' },
  vcpus: 1,
  memoryMiB: 256,
  agent: 'firecracker-vsock',
  cid: 7,
  accel: 'kvm',
};

describe('firecrackerConfigCalls', () => {
  it('maps paths through the chroot mapping (the jailer sees staged files at its root)', () => {
    const { calls } = firecrackerConfigCalls(spec, firecrackerRunFiles(spec.runDir), (p) => `/jail${p}`);
    expect(calls.find((c) => c.path === '/boot-source')?.body).toEqual({
      kernel_image_path: '/jail/k/vmlinux',
      boot_args: 'console=ttyS0 reboot=k',
    });
    expect(calls.find((c) => c.path === '/vsock')?.body).toEqual({
      guest_cid: 7,
      uds_path: '/jail/run/vms/dev/vsock.sock',
    });
    expect(calls.some((c) => c.path.startsWith('/network-interfaces'))).toBe(false);
  });
});

describe('versions', () => {
  it('compares semantic versions', () => {
    expect(parseVersion('1.14.1')).toEqual([1, 14, 1]);
    expect(parseVersion('v1.5.0-dev')).toEqual([1, 5, 0]);
    expect(parseVersion('garbage')).toBeUndefined();
    expect(versionAtLeast([1, 14, 1], [1, 5, 0])).toBe(true);
    expect(versionAtLeast([1, 4, 9], [1, 5, 0])).toBe(false);
    expect(versionAtLeast([1, 5, 0], [1, 5, 0])).toBe(true);
  });
});

describe('jailer', () => {
  it('execs firecracker in place (no --daemonize, no new pid namespace) so the pid stays Firecracker', () => {
    const argv = jailerArgv({
      jailerBin: '/usr/bin/jailer',
      firecrackerBin: '/usr/bin/firecracker',
      id: 'dev',
      uid: 1000,
      gid: 1000,
      chrootBase: '/srv/jail',
    });
    expect(argv).toEqual([
      '/usr/bin/jailer',
      '--id',
      'dev',
      '--exec-file',
      '/usr/bin/firecracker',
      '--uid',
      '1000',
      '--gid',
      '1000',
      '--chroot-base-dir',
      '/srv/jail',
      '--',
      '--api-sock',
      '/run/firecracker.socket',
    ]);
    expect(jailerChrootRoot('/srv/jail', '/usr/bin/firecracker', 'dev')).toBe(
      '/srv/jail/firecracker/dev/root',
    );
  });

  it('names staged files by role, so equal basenames never collide', () => {
    const names = jailedNames(
      {
        kernelPath: '/k/vmlinux',
        rootDisk: { path: '/a/root.ext4', format: 'raw' },
        extraDisks: [{ path: '/b/root.ext4', format: 'raw' }],
      },
      firecrackerRunFiles('/run/vms/dev'),
    );
    expect([...names.values()]).toEqual([
      '/kernel',
      '/disk0',
      '/disk1',
      '/firecracker.log',
      '/metrics.json',
      '/vsock.sock',
    ]);
  });
});
