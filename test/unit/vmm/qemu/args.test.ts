import { describe, expect, it } from 'vitest';
import { BangerError } from '../../../../src/model/errors.js';
import { buildQemuCommand, withConsole, withTscKhz } from '../../../../src/vmm/qemu/args.js';
import type { VmmLaunchSpec } from '../../../../src/vmm/types.js';

const spec: VmmLaunchSpec = {
  name: 'dev',
  runDir: '/run/banger/vms/dev',
  kernelPath: '/k/vmlinuz',
  initrdPath: '/k/initrd.img',
  cmdline: 'console=ttyS0 root=/dev/vda rw',
  rootDisk: { path: '/vms/dev/root.qcow2', format: 'qcow2' },
  extraDisks: [
    { path: '/vms/dev/work.ext4', format: 'raw' },
    { path: '/seed.ext4', format: 'raw', readOnly: true },
  ],
  vcpus: 2,
  memoryMiB: 1024,
  net: { tap: 'tap-fc-0001', mac: '02:fc:00:00:00:01' },
  agent: 'virtio-serial',
  accel: 'tcg',
};

describe('buildQemuCommand', () => {
  it('builds a microvm command line with every device a virtio-mmio device', () => {
    const cmd = buildQemuCommand(spec, {
      qemuBin: '/usr/bin/qemu-system-x86_64',
      vhostVsock: false,
      tscKhz: 2_600_000,
    });
    expect(cmd.argv).toEqual([
      '/usr/bin/qemu-system-x86_64',
      ...['-name', 'banger-dev'],
      ...['-M', 'microvm,accel=tcg,acpi=on,rtc=on,isa-serial=on', '-cpu', 'max', '-smp', '2', '-m', '1024'],
      ...['-display', 'none', '-nodefaults', '-no-user-config', '-no-reboot', '-serial', 'stdio'],
      ...['-qmp', 'unix:/run/banger/vms/dev/qmp.sock,server=on,wait=off'],
      ...['-kernel', '/k/vmlinuz', '-initrd', '/k/initrd.img'],
      ...['-append', 'console=ttyS0 root=/dev/vda rw tsc_early_khz=2600000'],
      ...[
        '-drive',
        'file=/vms/dev/root.qcow2,if=none,id=disk0,format=qcow2',
        '-device',
        'virtio-blk-device,drive=disk0',
      ],
      ...[
        '-drive',
        'file=/vms/dev/work.ext4,if=none,id=disk1,format=raw',
        '-device',
        'virtio-blk-device,drive=disk1',
      ],
      ...[
        '-drive',
        'file=/seed.ext4,if=none,id=disk2,format=raw,readonly=on',
        '-device',
        'virtio-blk-device,drive=disk2',
      ],
      ...['-netdev', 'tap,id=net0,ifname=tap-fc-0001,script=no,downscript=no'],
      ...['-device', 'virtio-net-device,netdev=net0,mac=02:fc:00:00:00:01'],
      ...['-device', 'virtio-serial-device'],
      ...['-chardev', 'socket,id=agent0,path=/run/banger/vms/dev/agent.sock,server=on,wait=off'],
      ...['-device', 'virtserialport,chardev=agent0,name=org.banger.agent'],
      ...['-device', 'virtio-rng-device'],
    ]);
    expect(cmd.agentEndpoint).toEqual({
      kind: 'virtio-serial',
      socketPath: '/run/banger/vms/dev/agent.sock',
    });
  });

  it('uses vhost-vsock and the host CPU under KVM when the host has them', () => {
    const cmd = buildQemuCommand(
      { ...spec, accel: 'kvm', agent: 'vsock', cid: 42, net: undefined },
      { qemuBin: 'qemu', vhostVsock: true, tscKhz: 2_600_000 },
    );
    expect(cmd.argv).toContain('microvm,accel=kvm,acpi=on,rtc=on,isa-serial=on');
    expect(cmd.argv[cmd.argv.indexOf('-cpu') + 1]).toBe('host');
    expect(cmd.argv).toContain('vhost-vsock-device,guest-cid=42');
    expect(cmd.argv).not.toContain('virtio-serial-device');
    expect(cmd.argv).not.toContain('-netdev');
    // KVM calibrates the TSC itself.
    expect(cmd.argv[cmd.argv.indexOf('-append') + 1]).toBe('console=ttyS0 root=/dev/vda rw');
    expect(cmd.agentEndpoint).toEqual({ kind: 'vsock', cid: 42, port: 1024 });
  });

  it("refuses vsock where the host has no vhost-vsock, vsock without a CID, and Firecracker's transport", () => {
    expect(() =>
      buildQemuCommand({ ...spec, agent: 'vsock', cid: 42 }, { qemuBin: 'qemu', vhostVsock: false }),
    ).toThrow(/no \/dev\/vhost-vsock/);
    expect(() =>
      buildQemuCommand({ ...spec, agent: 'vsock' }, { qemuBin: 'qemu', vhostVsock: true }),
    ).toThrow(/CID/);
    expect(() =>
      buildQemuCommand(
        { ...spec, agent: 'firecracker-vsock', cid: 42 },
        { qemuBin: 'qemu', vhostVsock: true },
      ),
    ).toThrow(/hybrid vsock/);
  });

  it('builds a q35 command line with every device a virtio-pci device and no TSC hint', () => {
    const cmd = buildQemuCommand(
      { ...spec, machine: 'q35' },
      { qemuBin: '/usr/bin/qemu-system-x86_64', vhostVsock: false, tscKhz: 2_600_000 },
    );
    expect(cmd.argv).toEqual([
      '/usr/bin/qemu-system-x86_64',
      ...['-name', 'banger-dev'],
      ...['-M', 'q35,accel=tcg', '-cpu', 'max', '-smp', '2', '-m', '1024'],
      ...['-display', 'none', '-nodefaults', '-no-user-config', '-no-reboot', '-serial', 'stdio'],
      ...['-qmp', 'unix:/run/banger/vms/dev/qmp.sock,server=on,wait=off'],
      ...['-kernel', '/k/vmlinuz', '-initrd', '/k/initrd.img'],
      // q35 has an HPET and a PM timer: no tsc_early_khz.
      ...['-append', 'console=ttyS0 root=/dev/vda rw'],
      ...[
        '-drive',
        'file=/vms/dev/root.qcow2,if=none,id=disk0,format=qcow2',
        '-device',
        'virtio-blk-pci,drive=disk0',
      ],
      ...[
        '-drive',
        'file=/vms/dev/work.ext4,if=none,id=disk1,format=raw',
        '-device',
        'virtio-blk-pci,drive=disk1',
      ],
      ...[
        '-drive',
        'file=/seed.ext4,if=none,id=disk2,format=raw,readonly=on',
        '-device',
        'virtio-blk-pci,drive=disk2',
      ],
      ...['-netdev', 'tap,id=net0,ifname=tap-fc-0001,script=no,downscript=no'],
      ...['-device', 'virtio-net-pci,netdev=net0,mac=02:fc:00:00:00:01'],
      ...['-device', 'virtio-serial-pci'],
      ...['-chardev', 'socket,id=agent0,path=/run/banger/vms/dev/agent.sock,server=on,wait=off'],
      ...['-device', 'virtserialport,chardev=agent0,name=org.banger.agent'],
      ...['-device', 'virtio-rng-pci'],
    ]);
    expect(cmd.argv.some((a) => a.endsWith('-device') && a.startsWith('virtio'))).toBe(false);
    expect(cmd.agentEndpoint).toEqual({
      kind: 'virtio-serial',
      socketPath: '/run/banger/vms/dev/agent.sock',
    });
  });

  it('uses vhost-vsock-pci on q35 under KVM', () => {
    const cmd = buildQemuCommand(
      { ...spec, machine: 'q35', accel: 'kvm', agent: 'vsock', cid: 42 },
      { qemuBin: 'qemu', vhostVsock: true },
    );
    expect(cmd.argv).toContain('q35,accel=kvm');
    expect(cmd.argv).toContain('vhost-vsock-pci,guest-cid=42');
    expect(cmd.argv).not.toContain('virtio-serial-pci');
    expect(cmd.agentEndpoint).toEqual({ kind: 'vsock', cid: 42, port: 1024 });
  });

  it('keeps microvm when the spec names it explicitly (the default)', () => {
    const host = { qemuBin: 'qemu', vhostVsock: false, tscKhz: 1000 };
    expect(buildQemuCommand({ ...spec, machine: 'microvm' }, host).argv).toEqual(
      buildQemuCommand(spec, host).argv,
    );
  });

  it('a restore waits for migrate-incoming (-incoming defer, last) and otherwise keeps the boot command line', () => {
    const host = { qemuBin: 'qemu', vhostVsock: false };
    const boot = buildQemuCommand(spec, host).argv;
    const restore = buildQemuCommand(
      { ...spec, incoming: { memoryPath: '/snap/memory', vmmVersion: '7.2.0' } },
      host,
    ).argv;
    expect(boot).not.toContain('-incoming');
    expect(restore).toEqual([...boot, '-incoming', 'defer']);
  });

  it('shareable RAM is a shared file in the run dir; a restore from a RAM file maps it private (copy-on-write)', () => {
    const host = { qemuBin: 'qemu', vhostVsock: false };
    const mem = (argv: string[]) => argv[argv.indexOf('-object') + 1];
    const machine = (argv: string[]) => argv[argv.indexOf('-M') + 1];
    const plain = buildQemuCommand(spec, host).argv;
    expect(plain).not.toContain('-object');
    const shared = buildQemuCommand({ ...spec, shareableRam: true }, host).argv;
    expect(mem(shared)).toBe(
      `memory-backend-file,id=ram0,size=${spec.memoryMiB}M,mem-path=${spec.runDir}/ram,share=on`,
    );
    expect(machine(shared)).toMatch(/,memory-backend=ram0$/);
    const fork = buildQemuCommand(
      { ...spec, incoming: { memoryPath: '/snap/memory', vmmVersion: '7.2.0', ramPath: '/snap/ram' } },
      host,
    ).argv;
    expect(mem(fork)).toBe(
      `memory-backend-file,id=ram0,size=${spec.memoryMiB}M,mem-path=/snap/ram,share=off`,
    );
    expect(machine(fork)).toMatch(/,memory-backend=ram0$/);
    expect(fork.slice(-2)).toEqual(['-incoming', 'defer']);
    // The RAM path is an option value too: a ',' would add options of its own.
    expect(() =>
      buildQemuCommand(
        {
          ...spec,
          incoming: { memoryPath: '/snap/memory', vmmVersion: '7.2.0', ramPath: '/s/ram,share=on' },
        },
        host,
      ),
    ).toThrow(BangerError);
  });

  it('refuses paths that would change the meaning of a QEMU option', () => {
    const bad = { ...spec, rootDisk: { path: '/x/a,format=raw,file=/etc/shadow', format: 'raw' as const } };
    expect(() => buildQemuCommand(bad, { qemuBin: 'qemu', vhostVsock: false })).toThrow(BangerError);
  });
});

describe('kernel command line helpers', () => {
  it('adds console=ttyS0 only when the caller gave no console', () => {
    expect(withConsole('root=/dev/vda')).toBe('console=ttyS0 root=/dev/vda');
    expect(withConsole('console=hvc0 root=/dev/vda')).toBe('console=hvc0 root=/dev/vda');
  });
  it('adds tsc_early_khz under TCG only, and never twice', () => {
    expect(withTscKhz('a', 'tcg', 1000)).toBe('a tsc_early_khz=1000');
    expect(withTscKhz('a tsc_early_khz=5', 'tcg', 1000)).toBe('a tsc_early_khz=5');
    expect(withTscKhz('a', 'kvm', 1000)).toBe('a');
    expect(withTscKhz('a', 'tcg', undefined)).toBe('a');
    expect(withTscKhz('a', 'tcg', 1000, 'q35')).toBe('a');
  });
});
