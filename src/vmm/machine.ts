import { type KernelCapabilities, STAGE1_MODULES, type Tristate } from '../kernel/index.js';
import { BangerError } from '../model/errors.js';
import type { Machine } from './types.js';

/** The capability fields the machine choice reads (a full KernelCapabilities record fits). */
export type MachineCapabilities = Pick<KernelCapabilities, 'virtioMmio' | 'virtioPci'>;

/**
 * A transport the guest will have once banger's initramfs has run: built in, or a module that initramfs
 * loads (a module it does not load would stay on disk, unseen, and the guest would find no root disk).
 */
function usable(state: Tristate, module: string): boolean {
  return (
    state === 'builtin' || (state === 'module' && (STAGE1_MODULES as readonly string[]).includes(module))
  );
}

/**
 * The QEMU machine a kernel can boot on: `microvm` (lighter, faster to start) when it has virtio-mmio,
 * `q35` when it has only virtio-pci. A kernel whose config is unknown keeps the microvm default (what banger
 * did before it could tell). Neither transport is a clear bad_request, before any VMM starts.
 */
export function chooseMachine(caps: MachineCapabilities): Machine {
  if (usable(caps.virtioMmio, 'virtio_mmio')) return 'microvm';
  if (usable(caps.virtioPci, 'virtio_pci')) return 'q35';
  if (caps.virtioMmio === 'unknown') return 'microvm';
  if (caps.virtioPci === 'unknown') return 'q35';
  throw new BangerError(
    'bad_request',
    `the kernel has neither virtio-mmio nor virtio-pci (CONFIG_VIRTIO_MMIO=${caps.virtioMmio}, CONFIG_VIRTIO_PCI=${caps.virtioPci}), so a VM cannot see its disks`,
    { hint: 'use a kernel built with CONFIG_VIRTIO_MMIO or CONFIG_VIRTIO_PCI (e.g. generic-6.12)' },
  );
}
