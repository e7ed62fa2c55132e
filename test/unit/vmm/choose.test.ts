import { describe, expect, it } from 'vitest';
import { BangerError } from '../../../src/model/errors.js';
import { chooseVmm, describeAcceleration, type HostProbe } from '../../../src/vmm/index.js';

const qemuOnly: HostProbe = {
  kvmDevice: 'present',
  vhostVsock: false,
  qemu: { path: '/usr/bin/qemu', version: '7.2.22' },
};
const both: HostProbe = { ...qemuOnly, firecracker: { path: '/usr/bin/firecracker' } };
const kvmOk = { usable: true, reason: 'a test guest booted under KVM' };
const kvmBroken = { usable: false, reason: 'failed to set MSR 0x10a' };

describe('chooseVmm', () => {
  it('auto prefers Firecracker when its binary and KVM both work', () => {
    expect(chooseVmm({ vmm: 'auto', accel: 'auto' }, both, kvmOk)).toMatchObject({
      kind: 'firecracker',
      accel: 'kvm',
      degraded: false,
    });
  });

  it('auto falls back to QEMU TCG with the reason when KVM is unusable', () => {
    const c = chooseVmm({ vmm: 'auto', accel: 'auto' }, both, kvmBroken);
    expect(c).toMatchObject({ kind: 'qemu', accel: 'tcg', degraded: true });
    expect(c.reasons).toContain('KVM unusable (failed to set MSR 0x10a) -> QEMU TCG');
  });

  it('auto uses QEMU with KVM when Firecracker is missing', () => {
    const c = chooseVmm({ vmm: 'auto', accel: 'auto' }, qemuOnly, kvmOk);
    expect(c).toMatchObject({ kind: 'qemu', accel: 'kvm' });
    expect(c.reasons[0]).toBe('no firecracker binary -> QEMU');
  });

  it('honours accel = "tcg" without probing KVM', () => {
    expect(chooseVmm({ vmm: 'auto', accel: 'tcg' }, both, undefined)).toMatchObject({
      kind: 'qemu',
      accel: 'tcg',
      degraded: false,
    });
  });

  it('refuses explicit settings the host cannot honour, saying why', () => {
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(BangerError);
        return (e as BangerError).message;
      }
      throw new Error('not refused');
    };
    expect(refused(() => chooseVmm({ vmm: 'firecracker', accel: 'auto' }, qemuOnly, kvmOk))).toMatch(
      /no firecracker binary/,
    );
    expect(refused(() => chooseVmm({ vmm: 'firecracker', accel: 'auto' }, both, kvmBroken))).toMatch(
      /needs KVM.*MSR/,
    );
    expect(refused(() => chooseVmm({ vmm: 'qemu', accel: 'kvm' }, qemuOnly, kvmBroken))).toMatch(
      /accel = "kvm" but KVM is unusable/,
    );
    expect(
      refused(() =>
        chooseVmm({ vmm: 'qemu', accel: 'auto' }, { kvmDevice: 'absent', vhostVsock: false }, undefined),
      ),
    ).toMatch(/no usable QEMU/);
  });
});

describe('describeAcceleration (doctor)', () => {
  it('reports a TCG fallback as a warning, not a failure', async () => {
    const r = await describeAcceleration(
      { vmm: 'auto', accel: 'auto' },
      { probeHost: async () => qemuOnly, probeKvm: async () => kvmBroken },
    );
    expect(r).toEqual({ ok: true, level: 'warn', message: expect.stringContaining('QEMU TCG: ') });
    expect(r.message).toContain('KVM unusable (failed to set MSR 0x10a) -> QEMU TCG');
  });

  it('reports a missing /dev/kvm without booting anything', async () => {
    const r = await describeAcceleration(
      { vmm: 'qemu', accel: 'auto' },
      {
        probeHost: async () => ({ ...qemuOnly, kvmDevice: 'absent' }),
        probeKvm: async () => {
          throw new Error('must not boot');
        },
      },
    );
    expect(r.level).toBe('warn');
    expect(r.message).toContain('no /dev/kvm');
  });

  it('is ok with KVM, and not ok when nothing can run guests', async () => {
    expect(
      await describeAcceleration(
        { vmm: 'qemu', accel: 'auto' },
        { probeHost: async () => qemuOnly, probeKvm: async () => kvmOk },
      ),
    ).toMatchObject({ ok: true, level: 'ok' });
    const none = await describeAcceleration(
      { vmm: 'auto', accel: 'auto' },
      { probeHost: async () => ({ kvmDevice: 'absent', vhostVsock: false }) },
    );
    expect(none.ok).toBe(false);
    expect(none.message).toMatch(/no usable QEMU/);
  });

  it('says KVM is untested (not unusable) when there is no kernel to probe with', async () => {
    const r = await describeAcceleration({ vmm: 'auto', accel: 'auto' }, { probeHost: async () => qemuOnly });
    expect(r.level).toBe('warn');
    expect(r.message).toContain('KVM not tested yet -> QEMU TCG');
    expect(r.message).toContain('banger kernel pull');
  });
});

describe('kvm_check = "skip"', () => {
  it('trusts KVM untested, so an explicit Firecracker is chosen where no probe could run', () => {
    const noKvm = { usable: false, reason: 'no /dev/kvm on this host' };
    const c = chooseVmm({ vmm: 'firecracker', accel: 'auto', kvm_check: 'skip' }, both, noKvm);
    expect(c).toMatchObject({ kind: 'firecracker', accel: 'kvm' });
    expect(c.reasons.join('; ')).toContain('not checked (kvm_check = "skip")');
    // The default still refuses, with the probe's reason.
    expect(() => chooseVmm({ vmm: 'firecracker', accel: 'auto', kvm_check: 'probe' }, both, noKvm)).toThrow(
      /needs KVM.*no \/dev\/kvm/,
    );
  });
});
