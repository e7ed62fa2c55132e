import { join } from 'node:path';
import { AGENT_SERIAL_NAME, AGENT_VSOCK_PORT, type AgentEndpoint } from '../../model/agent-endpoint.js';
import { badRequest } from '../../model/errors.js';
import { withConsole } from '../cmdline.js';
import type { VmmDisk, VmmLaunchSpec } from '../types.js';

export { withConsole };

/** The files QEMU creates in a VM's run dir, named in one place. */
export function qemuRunFiles(runDir: string) {
  return {
    qmpSocket: join(runDir, 'qmp.sock'),
    agentSocket: join(runDir, 'agent.sock'),
    consoleLog: join(runDir, 'console.log'),
  };
}

/** Host facts that shape the command line. */
export interface QemuHostFacts {
  qemuBin: string;
  /** /dev/vhost-vsock exists, so the agent can use vsock. */
  vhostVsock: boolean;
  /** The host TSC frequency in kHz, for microvm under TCG (see withTscKhz). */
  tscKhz?: number;
}

export interface QemuCommand {
  argv: string[];
  agentEndpoint: AgentEndpoint;
  files: ReturnType<typeof qemuRunFiles>;
}

/**
 * microvm under TCG cannot calibrate the TSC when the host is busy (no HPET or PM timer to measure it
 * against) and hangs at boot; telling the kernel the frequency avoids it (e2e-notes §6.2).
 */
export function withTscKhz(cmdline: string, accel: 'kvm' | 'tcg', tscKhz: number | undefined): string {
  if (accel !== 'tcg' || !tscKhz || /(^|\s)tsc_early_khz=/.test(cmdline)) return cmdline;
  return `${cmdline} tsc_early_khz=${tscKhz}`;
}

function driveArgs(disk: VmmDisk, index: number): string[] {
  const id = `disk${index}`;
  const opts = [`file=${disk.path}`, 'if=none', `id=${id}`, `format=${disk.format}`];
  if (disk.readOnly) opts.push('readonly=on');
  return ['-drive', opts.join(','), '-device', `virtio-blk-device,drive=${id}`];
}

/** QEMU's option syntax uses ',' as a separator; a path holding one would change the meaning. */
function assertOptionSafe(what: string, value: string): void {
  if (value.includes(',')) throw badRequest(`${what} must not contain ',' (QEMU option syntax): ${value}`);
}

/**
 * The QEMU command line for a spec: the microvm machine (virtio-mmio, no firmware beyond qboot, ACPI on
 * because Debian kernels lack virtio-mmio command-line devices), every device a virtio-*-device. Pure, so
 * tests compare argv.
 */
export function buildQemuCommand(spec: VmmLaunchSpec, host: QemuHostFacts): QemuCommand {
  const files = qemuRunFiles(spec.runDir);
  const disks: VmmDisk[] = [spec.rootDisk, ...(spec.extraDisks ?? [])];
  for (const d of disks) assertOptionSafe('disk path', d.path);
  assertOptionSafe('run dir', spec.runDir);

  const cmdline = withTscKhz(withConsole(spec.cmdline), spec.accel, host.tscKhz);
  const argv = [
    host.qemuBin,
    ...['-name', `banger-${spec.name}`],
    ...['-M', `microvm,accel=${spec.accel},acpi=on,rtc=on,isa-serial=on`],
    // KVM gives the guest the host's CPU; TCG emulates everything it can.
    ...['-cpu', spec.accel === 'kvm' ? 'host' : 'max'],
    ...['-smp', String(spec.vcpus), '-m', String(spec.memoryMiB)],
    ...['-display', 'none', '-nodefaults', '-no-user-config', '-no-reboot'],
    // The serial console goes to stdout, which the runner points at the console log (QEMU's own
    // errors land there too, where `vm logs` shows them).
    ...['-serial', 'stdio'],
    ...['-qmp', `unix:${files.qmpSocket},server=on,wait=off`],
    ...['-kernel', spec.kernelPath],
    ...(spec.initrdPath ? ['-initrd', spec.initrdPath] : []),
    ...['-append', cmdline],
    ...disks.flatMap(driveArgs),
  ];
  if (spec.net) {
    argv.push(
      ...['-netdev', `tap,id=net0,ifname=${spec.net.tap},script=no,downscript=no`],
      ...['-device', `virtio-net-device,netdev=net0,mac=${spec.net.mac}`],
    );
  }
  let agentEndpoint: AgentEndpoint;
  if (spec.agent === 'vsock' && host.vhostVsock && spec.cid !== undefined) {
    argv.push('-device', `vhost-vsock-device,guest-cid=${spec.cid}`);
    agentEndpoint = { kind: 'vsock', cid: spec.cid, port: AGENT_VSOCK_PORT };
  } else {
    // QEMU is the server and does not wait: the agent client connects (and reconnects) when it wants.
    argv.push(
      ...['-device', 'virtio-serial-device'],
      ...['-chardev', `socket,id=agent0,path=${files.agentSocket},server=on,wait=off`],
      ...['-device', `virtserialport,chardev=agent0,name=${AGENT_SERIAL_NAME}`],
    );
    agentEndpoint = { kind: 'virtio-serial', socketPath: files.agentSocket };
  }
  argv.push('-device', 'virtio-rng-device');
  return { argv, agentEndpoint, files };
}
