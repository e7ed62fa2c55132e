import type { Config } from '../config/index.js';
import type { Runner } from '../host/index.js';
import type { AgentTransport } from '../model/agent-endpoint.js';
import { operationFailed } from '../model/errors.js';
import { createFirecrackerVmm } from './firecracker/driver.js';
import type { HostProbe } from './host-probe.js';
import { createQemuVmm } from './qemu/driver.js';
import type { Vmm, VmmKind } from './types.js';

export interface BuildVmmDeps {
  config: Pick<Config, 'qemu_bin' | 'firecracker_bin' | 'jailer_bin' | 'jailer_enabled'>;
  runner: Runner;
  host: HostProbe;
  /** Required with jailer_enabled: where chroots are built (shares a filesystem with the images). */
  jailerChrootBase?: string;
  /** Where Firecracker's short socket symlinks go (the runtime dir). */
  shortSocketDir?: string;
}

/** The composition root's one place that turns a chosen kind into a driver. */
export function buildVmm(kind: VmmKind, deps: BuildVmmDeps): Vmm {
  if (kind === 'qemu')
    return createQemuVmm({
      runner: deps.runner,
      qemuBin: deps.host.qemu?.path ?? deps.config.qemu_bin,
      vhostVsock: deps.host.vhostVsock,
      tscKhz: deps.host.tscKhz,
    });
  // The jailer needs root to chroot, mknod and drop privileges.
  const jail = deps.config.jailer_enabled && process.getuid?.() === 0 && deps.jailerChrootBase;
  return createFirecrackerVmm({
    runner: deps.runner,
    firecrackerBin: deps.host.firecracker?.path ?? deps.config.firecracker_bin,
    shortSocketDir: deps.shortSocketDir,
    jailer: jail
      ? {
          jailerBin: deps.config.jailer_bin,
          chrootBase: deps.jailerChrootBase as string,
          uid: process.getuid?.() ?? 0,
          gid: process.getgid?.() ?? 0,
        }
      : undefined,
  });
}

/**
 * The agent transport a VM gets from this driver: the first it offers (QEMU lists vsock first, and only
 * where the host probe found /dev/vhost-vsock; Firecracker offers only its hybrid vsock).
 */
export function preferredAgentTransport(vmm: Pick<Vmm, 'capabilities'>): AgentTransport {
  const first = vmm.capabilities.agentTransports[0];
  if (!first) throw operationFailed('the chosen VMM offers no way to reach the guest agent');
  return first;
}
