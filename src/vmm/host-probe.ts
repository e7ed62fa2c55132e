import { accessSync, constants, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import { findExecutable, type Runner } from '../host/index.js';

/** What the host offers the VMMs, found without booting anything (see probeKvm for that). */
export interface HostProbe {
  qemu?: { path: string; version: string };
  firecracker?: { path: string };
  /** /dev/kvm: missing, present but not ours to open, or openable (which still does not mean usable). */
  kvmDevice: 'absent' | 'no-access' | 'present';
  vhostVsock: boolean;
  /** Host TSC frequency in kHz, for microvm under TCG. */
  tscKhz?: number;
}

export interface HostProbeDeps {
  config: Pick<Config, 'qemu_bin' | 'firecracker_bin'>;
  runner: Runner;
  /** Device paths, swappable for tests. */
  kvmPath?: string;
  vhostVsockPath?: string;
}

function deviceState(path: string): HostProbe['kvmDevice'] {
  if (!existsSync(path)) return 'absent';
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return 'present';
  } catch {
    return 'no-access';
  }
}

/** The TSC follows the host CPU clock under TCG; /proc/cpuinfo's `cpu MHz` is the best figure we have. */
export async function hostTscKhz(): Promise<number | undefined> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1]);
  return Number.isFinite(mhz) && mhz > 0 ? Math.round(mhz * 1000) : undefined;
}

/** `QEMU emulator version 7.2.22 (Debian …)` -> `7.2.22`. */
export function parseQemuVersion(output: string): string | undefined {
  return /QEMU emulator version (\S+)/.exec(output)?.[1];
}

/** Looks at binaries and devices; cheap, no guest is booted. */
export async function probeHost(deps: HostProbeDeps): Promise<HostProbe> {
  const probe: HostProbe = {
    kvmDevice: deviceState(deps.kvmPath ?? '/dev/kvm'),
    vhostVsock: deviceState(deps.vhostVsockPath ?? '/dev/vhost-vsock') === 'present',
    tscKhz: await hostTscKhz(),
  };
  const qemuPath = findExecutable(deps.config.qemu_bin || 'qemu-system-x86_64');
  if (qemuPath) {
    const out = await deps.runner.run([qemuPath, '--version'], { allowFailure: true, timeoutMs: 10_000 });
    const version = parseQemuVersion(out.stdout);
    if (out.exitCode === 0 && version) probe.qemu = { path: qemuPath, version };
  }
  const fcPath = findExecutable(deps.config.firecracker_bin || 'firecracker');
  if (fcPath) probe.firecracker = { path: fcPath };
  return probe;
}
