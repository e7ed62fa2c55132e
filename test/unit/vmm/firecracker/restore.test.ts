import { describe, expect, it } from 'vitest';
import { firecrackerRunFiles } from '../../../../src/vmm/firecracker/config.js';
import { contractProblems } from '../../../../src/vmm/firecracker/contract.js';
import { checkRestoreVersion, firecrackerRestoreCalls } from '../../../../src/vmm/firecracker/restore.js';
import type { VmmLaunchSpec } from '../../../../src/vmm/index.js';

const spec = (over: Partial<VmmLaunchSpec> = {}): VmmLaunchSpec => ({
  name: 'fork',
  runDir: '/s/vms/f/run',
  kernelPath: '/k/vmlinux',
  cmdline: 'root=/dev/vda',
  rootDisk: { path: '/s/vms/f/rootfs.img', format: 'raw' },
  extraDisks: [{ path: '/s/vms/f/work.img', format: 'raw' }],
  vcpus: 1,
  memoryMiB: 128,
  net: { tap: 'tap-fork', mac: '02:00:00:00:00:02' },
  agent: 'firecracker-vsock',
  cid: 4,
  accel: 'kvm',
  incoming: { memoryPath: '/s/snap/memory', statePath: '/s/snap/vmstate', vmmVersion: '1.14.1' },
  ...over,
});

describe('firecrackerRestoreCalls', () => {
  it('loads paused with the fork tap and vsock overrides, then points the drives at the fork files', () => {
    const calls = firecrackerRestoreCalls(spec(), firecrackerRunFiles('/s/vms/f/run'));
    expect(calls.load).toEqual({
      path: '/snapshot/load',
      body: {
        snapshot_path: '/s/snap/vmstate',
        mem_backend: { backend_type: 'File', backend_path: '/s/snap/memory' },
        resume_vm: false,
        network_overrides: [{ iface_id: 'eth0', host_dev_name: 'tap-fork' }],
        vsock_override: { uds_path: '/s/vms/f/run/vsock.sock' },
      },
    });
    expect(calls.drives).toEqual([
      { path: '/drives/rootfs', body: { drive_id: 'rootfs', path_on_host: '/s/vms/f/rootfs.img' } },
      { path: '/drives/disk1', body: { drive_id: 'disk1', path_on_host: '/s/vms/f/work.img' } },
    ]);
    // Every call holds to the contract the real API is checked against.
    expect(contractProblems('PUT', calls.load.path, calls.load.body)).toEqual([]);
    for (const d of calls.drives) expect(contractProblems('PATCH', d.path, d.body)).toEqual([]);
  });

  it('refuses a restore without the state file and a qcow2 disk', () => {
    const files = firecrackerRunFiles('/r');
    expect(() =>
      firecrackerRestoreCalls(spec({ incoming: { memoryPath: '/m', vmmVersion: '1.14.1' } }), files),
    ).toThrow(/device-state file/);
    expect(() =>
      firecrackerRestoreCalls(spec({ rootDisk: { path: '/x.qcow2', format: 'qcow2' } }), files),
    ).toThrow(/only takes raw disks, not qcow2/);
  });

  it('refuses another Firecracker version than the one that saved the snapshot', () => {
    expect(() => checkRestoreVersion('1.14.1', '1.14.1')).not.toThrow();
    expect(() => checkRestoreVersion('1.15.0', '1.14.1')).toThrow(
      'the snapshot was saved by Firecracker 1.14.1 and this host runs Firecracker 1.15.0',
    );
  });
});
