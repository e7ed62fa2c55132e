import { join } from 'node:path';
import { AGENT_SERIAL_NAME, AGENT_VSOCK_PORT, type AgentEndpoint } from '../../model/agent-endpoint.js';
import { badRequest } from '../../model/errors.js';
import { withConsole } from '../cmdline.js';
import type { Machine, VmmDisk, VmmLaunchSpec } from '../types.js';

export { withConsole };

/** The files QEMU creates in a VM's run dir, named in one place. */
export function qemuRunFiles(runDir: string) {
  return {
    qmpSocket: join(runDir, 'qmp.sock'),
    agentSocket: join(runDir, 'agent.sock'),
    consoleLog: join(runDir, 'console.log'),
    /** The guest's RAM when the VM is started with `shareableRam` (mapped shared, so a snapshot can copy it). */
    ram: join(runDir, 'ram'),
  };
}

/**
 * The `-qmp` value: it names this VM's QMP socket, in its run dir, so no other program's argv holds it
 * whole. It is the argument that proves a pid is this VM's QEMU.
 */
export function qmpArg(runDir: string): string {
  return `unix:${qemuRunFiles(runDir).qmpSocket},server=on,wait=off`;
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
export function withTscKhz(
  cmdline: string,
  accel: 'kvm' | 'tcg',
  tscKhz: number | undefined,
  machine: Machine = 'microvm',
): string {
  // q35 has an HPET and a PM timer to calibrate against, so it needs no hint.
  if (machine !== 'microvm' || accel !== 'tcg' || !tscKhz || /(^|\s)tsc_early_khz=/.test(cmdline))
    return cmdline;
  return `${cmdline} tsc_early_khz=${tscKhz}`;
}

/**
 * The same virtio device on each machine: `virtio-X-device` sits on microvm's virtio-mmio transport,
 * `virtio-X-pci` on q35's PCI bus. The guest drivers (virtio_blk, virtio_net …) are the same either way.
 */
function device(machine: Machine, base: string): string {
  return `${base}-${machine === 'q35' ? 'pci' : 'device'}`;
}

/** The -M value: microvm with ACPI (Debian kernels lack virtio-mmio command-line devices), or a plain q35. */
function machineArg(machine: Machine, accel: 'kvm' | 'tcg', ramBackend: boolean): string {
  const base =
    machine === 'q35' ? `q35,accel=${accel}` : `microvm,accel=${accel},acpi=on,rtc=on,isa-serial=on`;
  return ramBackend ? `${base},memory-backend=${RAM_BACKEND_ID}` : base;
}

const RAM_BACKEND_ID = 'ram0';

/**
 * The guest's RAM as a file: `share=on` for a VM to be snapshotted (its writes land in the file, which the
 * snapshot copies), `share=off` for a restore from such a file (MAP_PRIVATE: pages are read from the file
 * and shared with every other fork in the page cache; a guest write copies the page, never reaching the
 * file). QEMU 7.2 opens the file read-write either way; only the mapping decides whether it is written.
 */
function ramBackendArgs(spec: VmmLaunchSpec, files: ReturnType<typeof qemuRunFiles>): string[] {
  const restoreRam = spec.incoming?.ramPath;
  if (!restoreRam && !spec.shareableRam) return [];
  const path = restoreRam ?? files.ram;
  assertOptionSafe('RAM file path', path);
  const share = restoreRam ? 'off' : 'on';
  return [
    '-object',
    `memory-backend-file,id=${RAM_BACKEND_ID},size=${spec.memoryMiB}M,mem-path=${path},share=${share}`,
  ];
}

function driveArgs(disk: VmmDisk, index: number, machine: Machine): string[] {
  const id = `disk${index}`;
  const opts = [`file=${disk.path}`, 'if=none', `id=${id}`, `format=${disk.format}`];
  if (disk.readOnly) opts.push('readonly=on');
  return ['-drive', opts.join(','), '-device', `${device(machine, 'virtio-blk')},drive=${id}`];
}

/** QEMU's option syntax uses ',' as a separator; a path holding one would change the meaning. */
function assertOptionSafe(what: string, value: string): void {
  if (value.includes(',')) throw badRequest(`${what} must not contain ',' (QEMU option syntax): ${value}`);
}

/**
 * The QEMU command line for a spec: by default the microvm machine (virtio-mmio, no firmware beyond qboot,
 * ACPI on because Debian kernels lack virtio-mmio command-line devices), every device a virtio-*-device; with
 * `machine: 'q35'` the same devices as virtio-*-pci. Pure, so tests compare argv.
 */
export function buildQemuCommand(spec: VmmLaunchSpec, host: QemuHostFacts): QemuCommand {
  const files = qemuRunFiles(spec.runDir);
  const disks: VmmDisk[] = [spec.rootDisk, ...(spec.extraDisks ?? [])];
  for (const d of disks) assertOptionSafe('disk path', d.path);
  assertOptionSafe('run dir', spec.runDir);

  const machine = spec.machine ?? 'microvm';
  const ram = ramBackendArgs(spec, files);
  const cmdline = withTscKhz(withConsole(spec.cmdline), spec.accel, host.tscKhz, machine);
  const argv = [
    host.qemuBin,
    ...['-name', `banger-${spec.name}`],
    ...ram,
    ...['-M', machineArg(machine, spec.accel, ram.length > 0)],
    // KVM gives the guest the host's CPU; TCG emulates everything it can.
    ...['-cpu', spec.accel === 'kvm' ? 'host' : 'max'],
    ...['-smp', String(spec.vcpus), '-m', String(spec.memoryMiB)],
    ...['-display', 'none', '-nodefaults', '-no-user-config', '-no-reboot'],
    // The serial console goes to stdout, which the runner points at the console log (QEMU's own
    // errors land there too, where `vm logs` shows them).
    ...['-serial', 'stdio'],
    ...['-qmp', qmpArg(spec.runDir)],
    ...['-kernel', spec.kernelPath],
    ...(spec.initrdPath ? ['-initrd', spec.initrdPath] : []),
    ...['-append', cmdline],
    ...disks.flatMap((d, i) => driveArgs(d, i, machine)),
  ];
  if (spec.net) {
    argv.push(
      ...['-netdev', `tap,id=net0,ifname=${spec.net.tap},script=no,downscript=no`],
      ...['-device', `${device(machine, 'virtio-net')},netdev=net0,mac=${spec.net.mac}`],
    );
  }
  let agentEndpoint: AgentEndpoint;
  if (spec.agent === 'firecracker-vsock')
    throw badRequest('QEMU has no Firecracker hybrid vsock: ask for "vsock" or "virtio-serial"');
  if (spec.agent === 'vsock') {
    // Asking for vsock on a host without /dev/vhost-vsock is the caller's mistake (the driver's
    // capabilities said so); falling back silently would hide a wrong transport choice.
    if (!host.vhostVsock)
      throw badRequest('this host has no /dev/vhost-vsock, so QEMU cannot give the guest vsock', {
        hint: 'load the vhost_vsock module, or use the virtio-serial transport',
      });
    if (spec.cid === undefined) throw badRequest("QEMU vhost-vsock needs the VM's vsock CID");
    argv.push('-device', `${device(machine, 'vhost-vsock')},guest-cid=${spec.cid}`);
    agentEndpoint = { kind: 'vsock', cid: spec.cid, port: AGENT_VSOCK_PORT };
  } else {
    // QEMU is the server and does not wait: the agent client connects (and reconnects) when it wants.
    argv.push(
      ...['-device', device(machine, 'virtio-serial')],
      ...['-chardev', `socket,id=agent0,path=${files.agentSocket},server=on,wait=off`],
      ...['-device', `virtserialport,chardev=agent0,name=${AGENT_SERIAL_NAME}`],
    );
    agentEndpoint = { kind: 'virtio-serial', socketPath: files.agentSocket };
  }
  argv.push('-device', device(machine, 'virtio-rng'));
  // A restore waits for `migrate-incoming` over QMP, after the driver has compared QEMU's version.
  if (spec.incoming) argv.push('-incoming', 'defer');
  return { argv, agentEndpoint, files };
}
