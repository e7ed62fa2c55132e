import type { Config } from '../config/index.js';
import { badRequest } from '../model/errors.js';
import type { HostProbe } from './host-probe.js';
import type { KvmVerdict } from './kvm-probe.js';
import type { Accel, VmmKind } from './types.js';

/** The VMM and acceleration banger will use, with the reasons a user is told. */
export interface VmmChoice {
  kind: VmmKind;
  accel: Accel;
  /** Why; a fallback reason is printed by the CLI as a notice and by doctor as a warning. */
  reasons: string[];
  /** true when banger fell back from something better (KVM unusable, Firecracker missing). */
  degraded: boolean;
}

/** `kvm_check = "skip"`: the user vouches for KVM; the VMM itself fails at start if it does not work. */
export const KVM_UNCHECKED: KvmVerdict = { usable: true, reason: 'not checked (kvm_check = "skip")' };

/**
 * Picks the VMM from config and probes. Explicit settings are honoured or refused with the reason;
 * `auto` prefers Firecracker (binary + working KVM), then QEMU with KVM, then QEMU under TCG.
 */
export function chooseVmm(
  config: Pick<Config, 'vmm' | 'accel'> & Partial<Pick<Config, 'kvm_check'>>,
  host: HostProbe,
  probed: KvmVerdict | undefined,
): VmmChoice {
  const kvm = config.kvm_check === 'skip' ? KVM_UNCHECKED : probed;
  const kvmReason = kvm?.reason ?? 'not tested yet';
  const kvmUsable = kvm?.usable === true;
  const reasons: string[] = [];

  if (config.vmm === 'firecracker') {
    if (!host.firecracker)
      throw badRequest('vmm = "firecracker" but no firecracker binary was found', {
        hint: 'install firecracker or set firecracker_bin, or set vmm = "auto"',
      });
    if (!kvmUsable)
      throw badRequest(`vmm = "firecracker" needs KVM, which is unusable: ${kvmReason}`, {
        hint: 'set vmm = "qemu" to run guests under QEMU TCG',
      });
    if (config.accel === 'tcg') throw badRequest('accel = "tcg" is QEMU-only; Firecracker always uses KVM');
    const reasons = ['vmm = "firecracker" in config'];
    if (config.kvm_check === 'skip') reasons.push(kvmReason);
    return { kind: 'firecracker', accel: 'kvm', reasons, degraded: false };
  }

  if (config.vmm === 'auto' && config.accel !== 'tcg') {
    if (host.firecracker && kvmUsable)
      return {
        kind: 'firecracker',
        accel: 'kvm',
        reasons: ['firecracker found and KVM works'],
        degraded: false,
      };
    if (!host.firecracker) reasons.push('no firecracker binary -> QEMU');
    else reasons.push(`firecracker found but KVM unusable (${kvmReason}) -> QEMU`);
  }

  if (!host.qemu)
    throw badRequest('no usable QEMU (qemu-system-x86_64) was found', {
      hint: 'install qemu-system-x86 or set qemu_bin',
    });

  if (config.accel === 'tcg') {
    reasons.push('accel = "tcg" in config');
    return { kind: 'qemu', accel: 'tcg', reasons, degraded: false };
  }
  if (config.accel === 'kvm') {
    if (!kvmUsable)
      throw badRequest(`accel = "kvm" but KVM is unusable: ${kvmReason}`, {
        hint: 'set accel = "auto" to fall back to TCG',
      });
    reasons.push('accel = "kvm" in config');
    return { kind: 'qemu', accel: 'kvm', reasons, degraded: false };
  }
  if (kvmUsable) {
    reasons.push('KVM works');
    return { kind: 'qemu', accel: 'kvm', reasons, degraded: config.vmm === 'auto' && !!host.firecracker };
  }
  reasons.push(kvm ? `KVM unusable (${kvmReason}) -> QEMU TCG` : 'KVM not tested yet -> QEMU TCG');
  return { kind: 'qemu', accel: 'tcg', reasons, degraded: true };
}
