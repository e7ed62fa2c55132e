import { describe, expect, it } from 'vitest';
import { parseModuleIndex, planModules, STAGE1_MODULES } from '../../../src/kernel/index.js';

// Lines as depmod writes them for Debian's 6.1 cloud kernel (dependencies listed nearest first).
const MODULES_DEP = `
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/net/vmw_vsock/vsock.ko
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
`;

const base = (p: string) => p.split('/').pop();

describe('planModules', () => {
  const index = parseModuleIndex(MODULES_DEP, 'kernel/fs/ext4/ext4.ko\nkernel/crypto/crc32c_generic.ko\n');

  it('orders the stage-1 set so every module comes after its dependencies', () => {
    const plan = planModules(index, STAGE1_MODULES);
    const order = plan.ordered.map(base);
    expect(order).toEqual([
      'virtio_pci_legacy_dev.ko',
      'virtio_pci_modern_dev.ko',
      'virtio_ring.ko',
      'virtio.ko',
      'virtio_pci.ko',
      'virtio_mmio.ko',
      'virtio_blk.ko',
      'failover.ko',
      'net_failover.ko',
      'virtio_net.ko',
      'virtio_console.ko',
      'virtio-rng.ko',
      'vsock.ko',
      'vmw_vsock_virtio_transport_common.ko',
      'vmw_vsock_virtio_transport.ko',
    ]);
    for (const [path, entry] of index.byName) {
      if (!plan.ordered.includes(entry.path)) continue;
      for (const dep of entry.deps)
        expect(plan.ordered.indexOf(dep), `${path} after ${dep}`).toBeLessThan(
          plan.ordered.indexOf(entry.path),
        );
    }
    expect(plan.missing).toEqual([]);
  });

  it("folds '-' and '_' and reports built-in and missing modules", () => {
    const plan = planModules(index, ['virtio-rng', 'crc32c-generic', 'no_such_module']);
    expect(plan.ordered.map(base)).toEqual(['virtio_ring.ko', 'virtio.ko', 'virtio-rng.ko']);
    expect(plan.builtin).toEqual(['crc32c_generic']);
    expect(plan.missing).toEqual(['no_such_module']);
  });

  it('refuses a dependency cycle', () => {
    const cyclic = parseModuleIndex('a.ko: b.ko\nb.ko: a.ko\n');
    expect(() => planModules(cyclic, ['a'])).toThrow(/cycle/);
  });
});
