import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeQcow2Overlay } from '../../../host/index.js';
import { notFound, operationFailed } from '../../../model/errors.js';
import type { Snapshot } from '../../../model/snapshot.js';
import type { VM } from '../../../model/vm.js';
import { type HostKeyPair, isPlainHostKey } from '../../../ssh/index.js';
import { GIT_IDENTITY_SH, type GitIdentity } from '../workspaces/index.js';
import { GUEST_HOST_KEY, guestSh, SSHD_PRESENT, SSHD_PROBE } from './guest-setup.js';
import type { IdentityLedger } from './ledger.js';
import type { AgentPort } from './ports.js';
import type { VmServiceDeps } from './types.js';

/**
 * A fork's disks: qcow2 overlays in its VM dir over the snapshot's frozen files (read-only backing); for a
 * Firecracker snapshot raw copies (Firecracker takes raw files only and has no backing files), reflinked
 * where the filesystem can, sparse otherwise.
 */
export function forkDiskPaths(
  vmDir: string,
  format: 'raw' | 'qcow2' = 'qcow2',
): { root: string; work: string } {
  return format === 'raw'
    ? { root: join(vmDir, 'rootfs.img'), work: join(vmDir, 'work.img') }
    : { root: join(vmDir, 'rootfs.qcow2'), work: join(vmDir, 'work.qcow2') };
}

/** The snapshot a fork's overlays are backed by; gone only if its row was removed by hand. */
export function forkSnapshot(deps: Pick<VmServiceDeps, 'store'>, vm: VM): Snapshot {
  const id = vm.runtime.forkOf?.snapshotId ?? '';
  const s = deps.store.snapshots.findById(id);
  if (s?.state !== 'ready')
    throw notFound(
      `snapshot ${vm.runtime.forkOf?.snapshotName ?? id} that VM ${vm.name} was forked from is gone`,
    );
  return s;
}

/**
 * Makes the fork's overlays once (kept across stops: they hold the fork's changes). Each file's identity is
 * recorded before it is made. The snapshot's files are never written: QEMU opens backing files read-only.
 */
export async function ensureForkDisks(
  vmDir: string,
  snapshot: Snapshot,
  ledger: IdentityLedger,
  copyRaw?: (from: string, to: string) => Promise<void>,
): Promise<{ root: string; work: string; format: 'raw' | 'qcow2' }> {
  const format = snapshot.vmm.kind === 'firecracker' ? 'raw' : 'qcow2';
  if (format === 'raw' && !copyRaw) throw operationFailed('raw fork disks need a copy function');
  const paths = forkDiskPaths(vmDir, format);
  const backing = (role: 'root-disk' | 'work-disk') => {
    const f = snapshot.files.find((x) => x.role === role);
    if (!f) throw operationFailed(`snapshot ${snapshot.name} has no ${role} file`);
    return {
      path: join(snapshot.dir, f.name),
      format: f.name.endsWith('.qcow2') ? ('qcow2' as const) : ('raw' as const),
    };
  };
  for (const [dest, role] of [
    [paths.root, 'root-disk'],
    [paths.work, 'work-disk'],
  ] as const) {
    if (existsSync(dest)) continue;
    const b = backing(role);
    await ledger.record([{ kind: 'file', path: dest }]);
    try {
      if (format === 'raw' && copyRaw) await copyRaw(b.path, dest);
      // In-process (no qemu-img spawn): the warm `vm run` path makes two of these on every run.
      else await writeQcow2Overlay(dest, { path: b.path, format: b.format });
    } catch (err) {
      await rm(dest, { force: true });
      throw err;
    }
  }
  return { ...paths, format };
}

/** Values a restored guest is told (it still has the snapshot's). Validated: they go into a shell script. */
export interface ForkIdentity {
  hostname: string;
  address: string;
  prefix: number;
  gateway: string;
  mac: string;
  dns?: string;
  /** The fork's own ssh host key (the snapshot's disk carries its source's, shared by every fork). */
  hostKey: HostKeyPair;
  /**
   * The host user's git identity into /root/.gitconfig (a warm template's restore: the host files of this
   * start). Passed as the script's $1 and $2, never spliced into it.
   */
  git?: GitIdentity;
}

const PLAIN = /^[A-Za-z0-9.:-]+$/;

/**
 * One script, one agent round trip: the new MAC (virtio-net takes it through its control queue, so two
 * forks never share one on the bridge), address and default route, hostname, resolv.conf, the clock stepped
 * to the host's (it continued from the snapshot) and fresh bytes mixed into the guest's random pool (two
 * forks must not draw the same numbers), and its own ed25519 host key, with a running sshd told to reload
 * (SIGHUP: it re-executes and reads its keys again) so `vm ssh` meets the key it pins. Only validated plain
 * values are interpolated; the private key goes in through a quoted here-document; the git identity
 * comes in as positional parameters.
 */
export function identityScript(id: ForkIdentity, now = new Date(), seed = randomBytes(64)): string {
  for (const v of [id.hostname, id.address, id.gateway, id.mac, id.dns ?? 'none'])
    if (!PLAIN.test(v)) throw operationFailed(`refusing to put ${JSON.stringify(v)} into the guest's script`);
  if (!isPlainHostKey(id.hostKey)) throw operationFailed('refusing a host key that is not plain key text');
  const key = GUEST_HOST_KEY.replace(/\.pub$/, '');
  return [
    'set -e',
    'ip link set dev eth0 address ' + id.mac,
    'ip addr flush dev eth0',
    `ip addr add ${id.address}/${id.prefix} dev eth0`,
    'ip link set dev eth0 up',
    `ip route replace default via ${id.gateway} dev eth0`,
    `hostname ${id.hostname}`,
    `echo ${id.hostname} > /etc/hostname`,
    ...(id.dns ? [`echo 'nameserver ${id.dns}' > /etc/resolv.conf`] : []),
    `date -u -s @${Math.floor(now.getTime() / 1000)} > /dev/null`,
    `echo ${seed.toString('hex')} > /dev/urandom`,
    // Written aside then renamed: sshd never reads half a key. umask only in the subshell (hostname above
    // and anything after keep their modes).
    `(umask 077; mkdir -p /etc/ssh; cat > ${key}.banger-new <<'BANGER_HOST_KEY'`,
    id.hostKey.privateKey.trimEnd(),
    'BANGER_HOST_KEY',
    `mv -f ${key}.banger-new ${key})`,
    `echo '${id.hostKey.publicKey} root@${id.hostname}' > ${key}.pub`,
    `chmod 644 ${key}.pub`,
    'for f in /run/sshd.pid /var/run/sshd.pid; do if [ -s "$f" ]; then kill -HUP "$(cat "$f")" 2>/dev/null || true; break; fi; done',
    ...(id.git ? [GIT_IDENTITY_SH] : []),
    // The sshd probe in the same round trip (a warm `vm run` pays for each one).
    SSHD_PROBE,
  ].join('\n');
}

/** Applies the new identity through the agent; a guest that cannot take it is a failed fork. */
export async function applyForkIdentity(agent: AgentPort, id: ForkIdentity): Promise<{ hasSshd: boolean }> {
  const args = id.git ? [id.git.name, id.git.email] : [];
  const r = await guestSh(agent, identityScript(id), 'the identity script', args);
  if (r.code !== 0)
    throw operationFailed(`the restored guest could not take its new identity (exit ${r.code}): ${r.output}`);
  return { hasSshd: r.output.split('\n').at(-1) === SSHD_PRESENT };
}
