import { existsSync } from 'node:fs';
import type { Check } from './checks.js';

/**
 * Which accelerator guests will get. /dev/kvm existing is not enough (nested hosts expose it while guests
 * never start), so the verdict comes from the VMM layer's probe once it is wired; until then, presence only.
 */
export const checkAcceleration: Check = async () => {
  if (!existsSync('/dev/kvm')) {
    return {
      name: 'kvm',
      status: 'WARN',
      details: ['/dev/kvm is missing: QEMU will use TCG (software emulation, slower)'],
      hint: 'enable virtualization in firmware, or load kvm_intel/kvm_amd',
    };
  }
  return { name: 'kvm', status: 'PASS', details: ['/dev/kvm present'] };
};
