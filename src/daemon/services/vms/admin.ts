import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { growWorkDisk } from '../../../host/index.js';
import { BangerError, badRequest } from '../../../model/errors.js';
import { formatSize } from '../../../model/sizes.js';
import type { VM } from '../../../model/vm.js';
import { sshConfigLines } from '../../../ssh/index.js';
import { guestSh } from './guest-setup.js';
import type { AgentPort } from './ports.js';
import { vmPaths } from './run-dir.js';
import type { VmServiceDeps } from './types.js';

/** The states `vm prune` removes: everything that holds no running VMM (`deleting`: a teardown cut short). */
export const PRUNABLE_STATES: readonly VM['state'][] = ['created', 'stopped', 'error', 'deleting'];

export interface SpecChange {
  vcpu?: number;
  memoryMib?: number;
  diskSizeBytes?: number;
}

/**
 * `vm set` on a stopped VM: checks every change before making any, grows the work disk offline (e2fsck +
 * resize2fs) when it exists, then writes the new spec. Takes effect at the next start.
 */
export async function applySpecChange(deps: VmServiceDeps, vm: VM, change: SpecChange): Promise<VM> {
  if (vm.state === 'deleting') throw badRequest(`VM ${vm.name} is being deleted`);
  if (vm.state === 'running') {
    throw new BangerError('bad_request', `VM ${vm.name} is running; stop it first to change its spec`, {
      hint: `banger vm stop ${vm.name}`,
    });
  }
  if (change.vcpu === undefined && change.memoryMib === undefined && change.diskSizeBytes === undefined)
    throw badRequest('nothing to change', { hint: 'give --vcpu, --memory or --disk-size' });
  const current = vm.spec.diskSizeBytes;
  if (change.diskSizeBytes !== undefined && change.diskSizeBytes < current) {
    throw badRequest(
      `the work disk of ${vm.name} cannot shrink from ${formatSize(current)} to ${formatSize(change.diskSizeBytes)}`,
      { hint: 'work disks only grow; give a size of at least the current one' },
    );
  }
  const workDisk = vmPaths(deps.vmsDir, vm.id).workDisk;
  if (change.diskSizeBytes !== undefined && change.diskSizeBytes > current && existsSync(workDisk))
    await growWorkDisk(deps.runner, { path: workDisk, sizeBytes: change.diskSizeBytes });
  const spec = {
    ...vm.spec,
    ...(change.vcpu !== undefined && { vcpu: change.vcpu }),
    ...(change.memoryMib !== undefined && { memoryMib: change.memoryMib }),
    ...(change.diskSizeBytes !== undefined && { diskSizeBytes: change.diskSizeBytes }),
  };
  deps.store.vms.updateSpec(vm.id, spec);
  return { ...vm, spec };
}

const agentPortsSchema = z.array(
  z.object({
    protocol: z.enum(['tcp', 'tcp6', 'udp', 'udp6']),
    address: z.string(),
    port: z.number().int(),
    inode: z.number().int(),
  }),
);

export interface GuestPort {
  protocol: 'tcp' | 'udp';
  /** The address the socket listens on in the guest (0.0.0.0, ::, 127.0.0.1…). */
  address: string;
  port: number;
  /**
   * Reach it here from the host: `<name>.vm:<port>` (banger's DNS), or the loopback address for a
   * loopback-only socket (reachable from inside the guest only).
   */
  endpoint: string;
  /** The same through the guest IP, for hosts whose resolver does not route `.vm` (docs/dns.md). */
  ipEndpoint: string;
  /** `http://<name>.vm:<port>/` when the port answered an HTTP probe. */
  url?: string;
  process?: string;
}

/**
 * The guest's listening TCP sockets and bound UDP sockets (the agent reads /proc/net), each with the
 * process that holds it when it can be found. The agent does not name processes, so one exec through it
 * maps socket inodes to /proc/<pid>/comm; that is best-effort (a guest without sh just gets no names).
 */
export async function guestPorts(
  agent: AgentPort,
  vm: { name: string; guestIp: string | undefined },
): Promise<GuestPort[]> {
  const { guestIp } = vm;
  const raw = agentPortsSchema.parse(await agent.ports());
  const names = raw.length > 0 ? await socketOwners(agent).catch(() => new Map<number, string>()) : new Map();
  const seen = new Set<string>();
  const out: GuestPort[] = [];
  for (const p of raw) {
    const protocol = p.protocol.startsWith('tcp') ? 'tcp' : 'udp';
    const loopback = p.address === '127.0.0.1' || p.address === '::1' || p.address.startsWith('127.');
    const host = loopback ? p.address : (guestIp ?? p.address);
    const ipEndpoint = host.includes(':') ? `[${host}]:${p.port}` : `${host}:${p.port}`;
    const endpoint = loopback || !guestIp ? ipEndpoint : `${vm.name}.vm:${p.port}`;
    // A dual-stack listener shows once per family; one line per endpoint and protocol is what users want.
    const key = `${protocol} ${endpoint}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const process = names.get(p.inode);
    out.push({
      protocol,
      address: p.address,
      port: p.port,
      endpoint,
      ipEndpoint,
      ...(process && { process }),
    });
  }
  return out.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

const OWNERS_SCRIPT = [
  'for f in /proc/[0-9]*/fd/*; do',
  '  l=$(readlink "$f" 2>/dev/null) || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansions, not a template
  '  case "$l" in socket:*) p=${f#/proc/}; p=${p%%/*}; echo "${l#socket:} $(cat /proc/$p/comm 2>/dev/null)";; esac',
  'done',
].join('\n');

async function socketOwners(agent: AgentPort): Promise<Map<number, string>> {
  // 2>/dev/null inside: a process that exits mid-scan makes readlink complain, and only stdout is parsed.
  const { output } = await guestSh(agent, `{\n${OWNERS_SCRIPT}\n} 2>/dev/null`, 'the socket owner lookup');
  const owners = new Map<number, string>();
  for (const line of output.split('\n')) {
    const m = /^\[(\d+)\] (\S+)/.exec(line);
    if (m && !owners.has(Number(m[1]))) owners.set(Number(m[1]), m[2] as string);
  }
  return owners;
}

/**
 * banger's ssh_config: one `Host NAME.vm NAME` block per VM with an address, then the shared options for
 * `*.vm` (root, and the same key, pinned known_hosts and strict checking as `vm ssh`). Users opt in with `banger ssh-config --install`, which
 * Includes this file from ~/.ssh/config.
 */
export function renderSshConfig(
  vms: readonly VM[],
  ssh: { keyPath: string; knownHostsPath: string },
): string {
  const lines = ['# Written by banger (banger ssh-config); regenerated as VMs change. Do not edit.', ''];
  for (const vm of [...vms].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!vm.runtime.guestIp) continue;
    lines.push(`Host ${vm.name}.vm`, `  HostName ${vm.runtime.guestIp}`, '');
  }
  lines.push('Host *.vm', '  User root', ...sshConfigLines(ssh.keyPath, ssh.knownHostsPath), '');
  return lines.join('\n');
}

/** Writes banger's ssh_config atomically (0644: it names paths, no secrets). */
export async function writeSshConfig(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, text, { mode: 0o644, fsync: true });
}
