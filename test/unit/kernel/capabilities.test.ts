import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../../src/kernel/index.js';

describe('detectCapabilities', () => {
  it("reads Debian's modular cloud config", () => {
    const config = [
      'CONFIG_VIRTIO=m',
      'CONFIG_VIRTIO_PCI=m',
      'CONFIG_VIRTIO_MMIO=m',
      '# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set',
      'CONFIG_VIRTIO_BLK=m',
      'CONFIG_VIRTIO_NET=m',
      'CONFIG_VIRTIO_CONSOLE=m',
      'CONFIG_HW_RANDOM_VIRTIO=m',
      'CONFIG_VIRTIO_VSOCKETS=m',
      'CONFIG_EXT4_FS=y',
      '# CONFIG_IP_PNP is not set',
    ].join('\n');
    expect(detectCapabilities(config)).toEqual({
      configKnown: true,
      virtioPci: 'module',
      virtioMmio: 'module',
      virtioBlk: 'module',
      virtioNet: 'module',
      virtioConsole: 'module',
      virtioRng: 'module',
      vsock: 'module',
      ext4: 'builtin',
      virtioMmioCmdlineDevices: false,
      ipAutoconfig: false,
      needsInitramfs: true,
    });
  });

  it('reads a Firecracker-style built-in config', () => {
    const caps = detectCapabilities(
      'CONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\nCONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_NET=y\nCONFIG_EXT4_FS=y\nCONFIG_IP_PNP=y\nCONFIG_VIRTIO_VSOCKETS=y\n',
    );
    expect(caps).toMatchObject({
      virtioMmio: 'builtin',
      virtioPci: 'absent',
      virtioMmioCmdlineDevices: true,
      ipAutoconfig: true,
      vsock: 'builtin',
      needsInitramfs: false,
    });
  });

  it('says unknown without a config', () => {
    expect(detectCapabilities(undefined)).toMatchObject({
      configKnown: false,
      virtioBlk: 'unknown',
      needsInitramfs: false,
    });
  });
});
