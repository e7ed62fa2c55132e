import { describe, expect, it } from 'vitest';
import { detectCapabilities, type Tristate } from '../../../src/kernel/index.js';
import { BangerError } from '../../../src/model/errors.js';
import {
  chooseMachine,
  createFirecrackerVmm,
  createQemuVmm,
  preflightFirecracker,
  type VmmLaunchSpec,
} from '../../../src/vmm/index.js';

const spec: VmmLaunchSpec = {
  name: 'dev',
  runDir: '/run/vms/dev',
  kernelPath: '/nonexistent/vmlinux',
  cmdline: 'root=/dev/vda',
  rootDisk: { path: '/vms/root.ext4', format: 'raw' },
  vcpus: 1,
  memoryMiB: 256,
  agent: 'vsock',
  accel: 'kvm',
};

/** A runner that fails the test if anything is spawned: refusals must happen before any process starts. */
const noSpawn = {
  run: async () => ({ stdout: '', stderr: '', exitCode: 0 }),
  spawn: () => {
    throw new Error('must not spawn');
  },
};

async function errorOf(p: Promise<unknown>): Promise<BangerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BangerError);
  return err as BangerError;
}

describe('chooseMachine', () => {
  it.each<[Tristate, Tristate, 'microvm' | 'q35']>([
    ['builtin', 'builtin', 'microvm'],
    ['builtin', 'absent', 'microvm'],
    // banger's initramfs loads virtio_mmio, so a modular one counts (the Debian cloud kernel).
    ['module', 'module', 'microvm'],
    ['absent', 'builtin', 'q35'],
    ['absent', 'module', 'q35'],
    // No config: keep the microvm default; a known-absent mmio with unknown pci is best tried on q35.
    ['unknown', 'unknown', 'microvm'],
    ['absent', 'unknown', 'q35'],
  ])('virtio-mmio %s, virtio-pci %s -> %s', (virtioMmio, virtioPci, machine) => {
    expect(chooseMachine({ virtioMmio, virtioPci })).toBe(machine);
  });

  it('reads a full capabilities record from a kernel config', () => {
    expect(chooseMachine(detectCapabilities('CONFIG_VIRTIO_PCI=y\n# CONFIG_VIRTIO_MMIO is not set\n'))).toBe(
      'q35',
    );
    expect(chooseMachine(detectCapabilities('CONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_MMIO=m\n'))).toBe('microvm');
  });

  it('refuses a kernel with neither transport with a clear bad_request', () => {
    let err: unknown;
    try {
      chooseMachine(detectCapabilities('CONFIG_EXT4_FS=y\n'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).code).toBe('bad_request');
    expect((err as BangerError).message).toMatch(/neither virtio-mmio nor virtio-pci/);
    expect((err as BangerError).hint).toMatch(/CONFIG_VIRTIO_MMIO/);
  });
});

describe('machine at the drivers edge', () => {
  it('Firecracker refuses q35 before looking at the kernel or starting anything', async () => {
    const err = await errorOf(preflightFirecracker({ ...spec, machine: 'q35' }));
    expect(err.code).toBe('bad_request');
    expect(err.message).toMatch(/machine "q35" is QEMU-only/);

    const fc = createFirecrackerVmm({ runner: noSpawn, firecrackerBin: 'firecracker' });
    const viaStart = await errorOf(fc.start({ ...spec, machine: 'q35' }));
    expect(viaStart.code).toBe('bad_request');
    expect(viaStart.message).toMatch(/QEMU-only/);
  });

  it('QEMU refuses a machine it does not know (from JSON, say) before spawning', async () => {
    const qemu = createQemuVmm({ runner: noSpawn, qemuBin: 'qemu', vhostVsock: false });
    const err = await errorOf(qemu.start({ ...spec, machine: 'pc-i440fx' as never }));
    expect(err.code).toBe('bad_request');
    expect(err.message).toMatch(/machine must be one of/);
  });
});
