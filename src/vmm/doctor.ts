import type { Config } from '../config/index.js';
import { toBangerError } from '../model/errors.js';
import { chooseVmm } from './choose.js';
import type { HostProbe } from './host-probe.js';
import type { KvmVerdict } from './kvm-probe.js';

export interface AccelerationReport {
  ok: boolean;
  level: 'ok' | 'warn';
  message: string;
}

export interface DescribeAccelerationDeps {
  probeHost(): Promise<HostProbe>;
  /** Boots a test guest under KVM (cached); undefined when no kernel is installed to probe with. */
  probeKvm?(host: HostProbe): Promise<KvmVerdict>;
}

/**
 * One line for `banger doctor`: which VMM and acceleration will run guests, and why. Falling back to TCG
 * is a warning (guests run, slower), never a failure; only "nothing can run guests" is not ok.
 */
export async function describeAcceleration(
  config: Pick<Config, 'vmm' | 'accel'> & Partial<Pick<Config, 'kvm_check'>>,
  deps: DescribeAccelerationDeps,
): Promise<AccelerationReport> {
  const host = await deps.probeHost();
  let kvm: KvmVerdict | undefined;
  if (config.kvm_check === 'skip')
    kvm = undefined; // chooseVmm trusts KVM untested
  else if (host.kvmDevice === 'absent') kvm = { usable: false, reason: 'no /dev/kvm on this host' };
  else if (host.kvmDevice === 'no-access')
    kvm = { usable: false, reason: '/dev/kvm is not readable and writable by this user' };
  else if (config.accel !== 'tcg' || config.vmm === 'firecracker')
    kvm = deps.probeKvm ? await deps.probeKvm(host) : undefined;
  try {
    const choice = chooseVmm(config, host, kvm);
    const label = choice.kind === 'qemu' ? `QEMU ${choice.accel.toUpperCase()}` : 'Firecracker (KVM)';
    // Without a kernel there is nothing to boot under KVM, so the verdict waits for the first kernel.
    const untested =
      kvm === undefined && host.kvmDevice === 'present' && choice.accel === 'tcg' && config.accel !== 'tcg';
    const message = `${label}: ${choice.reasons.join('; ')}${untested ? ' (install a kernel, e.g. `banger kernel pull`, to test KVM)' : ''}`;
    return choice.degraded ? { ok: true, level: 'warn', message } : { ok: true, level: 'ok', message };
  } catch (err) {
    const e = toBangerError(err);
    return { ok: false, level: 'warn', message: e.hint ? `${e.message} (${e.hint})` : e.message };
  }
}
