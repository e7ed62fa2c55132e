import { join } from 'node:path';
import { AGENT_VSOCK_PORT, type AgentEndpoint } from '../../model/agent-endpoint.js';
import { badRequest } from '../../model/errors.js';
import type { VmmLaunchSpec } from '../types.js';

/** One pre-boot API call, in the order the driver makes them. */
export interface ApiCall {
  path: string;
  body: Record<string, unknown>;
}

/** The files Firecracker uses in a VM's run dir, named in one place. */
export function firecrackerRunFiles(runDir: string) {
  return {
    apiSocket: join(runDir, 'firecracker.sock'),
    vsockSocket: join(runDir, 'vsock.sock'),
    consoleLog: join(runDir, 'console.log'),
    log: join(runDir, 'firecracker.log'),
    metrics: join(runDir, 'metrics.json'),
  };
}

/** Firecracker accepts 1 or an even number of vCPUs, at most 32 (firecracker-api.yaml MachineConfiguration). */
export function validateVcpus(vcpus: number): void {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 32 || (vcpus > 1 && vcpus % 2 !== 0))
    throw badRequest(`Firecracker needs 1 or an even number of vCPUs up to 32, not ${vcpus}`);
}

/**
 * The pre-boot configuration as API calls, in order: logging first (so later failures are logged), then
 * machine, boot source, drives, network and vsock; InstanceStart is sent by the driver after these.
 * `chrootPath` maps host paths to what Firecracker sees (identity without the jailer).
 */
export function firecrackerConfigCalls(
  spec: VmmLaunchSpec,
  files: ReturnType<typeof firecrackerRunFiles>,
  chrootPath: (hostPath: string) => string = (p) => p,
): { calls: ApiCall[]; agentEndpoint: AgentEndpoint } {
  validateVcpus(spec.vcpus);
  if (spec.agent !== 'firecracker-vsock')
    throw badRequest(`Firecracker reaches its guest only over its hybrid vsock, not ${spec.agent}`);
  if (spec.cid === undefined || spec.cid < 3)
    throw badRequest("Firecracker needs the VM's vsock CID (3 or more)");
  const calls: ApiCall[] = [
    { path: '/logger', body: { log_path: chrootPath(files.log), level: 'Info', show_level: true } },
    { path: '/metrics', body: { metrics_path: chrootPath(files.metrics) } },
    { path: '/machine-config', body: { vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMiB, smt: false } },
    {
      path: '/boot-source',
      body: {
        kernel_image_path: chrootPath(spec.kernelPath),
        boot_args: spec.cmdline,
        ...(spec.initrdPath ? { initrd_path: chrootPath(spec.initrdPath) } : {}),
      },
    },
  ];
  const disks = [{ ...spec.rootDisk, readOnly: false }, ...(spec.extraDisks ?? [])];
  disks.forEach((disk, i) => {
    if (disk.format !== 'raw')
      throw badRequest(`Firecracker only takes raw disks, not ${disk.format}: ${disk.path}`);
    const id = i === 0 ? 'rootfs' : `disk${i}`;
    calls.push({
      path: `/drives/${id}`,
      body: {
        drive_id: id,
        path_on_host: chrootPath(disk.path),
        is_root_device: i === 0,
        is_read_only: disk.readOnly ?? false,
      },
    });
  });
  if (spec.net)
    calls.push({
      path: '/network-interfaces/eth0',
      body: { iface_id: 'eth0', host_dev_name: spec.net.tap, guest_mac: spec.net.mac },
    });
  calls.push({ path: '/vsock', body: { guest_cid: spec.cid, uds_path: chrootPath(files.vsockSocket) } });
  return {
    calls,
    agentEndpoint: { kind: 'firecracker-vsock', udsPath: files.vsockSocket, port: AGENT_VSOCK_PORT },
  };
}

/** `1.14.1` -> [1, 14, 1]; anything unparsable is undefined. */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** The oldest Firecracker whose API matches what this driver sends (as the original's doctor checks). */
export const FIRECRACKER_MIN_VERSION: [number, number, number] = [1, 5, 0];

export function versionAtLeast(v: [number, number, number], min: [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return (v[i] ?? 0) > (min[i] ?? 0);
  return true;
}
