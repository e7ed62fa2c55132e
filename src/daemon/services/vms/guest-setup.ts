import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { operationFailed } from '../../../model/errors.js';
import type { AgentPort } from './ports.js';

/** Where the original mounted the per-VM work disk (the second virtio disk): root's home. */
export const WORK_DISK_DEVICE = '/dev/vdb';
export const WORK_DISK_MOUNT = '/root';
export const GUEST_HOST_KEY = '/etc/ssh/ssh_host_ed25519_key.pub';

/** A short script's output: 1 MiB and 2 min (a mount under TCG is slow) are far beyond what ours print. */
export const GUEST_SH_MAX_BYTES = 1024 * 1024;
export const GUEST_SH_TIMEOUT_MS = 120_000;
/** An ed25519 public key line is under 100 bytes; 64 KiB leaves room for comments. */
export const HOST_KEY_MAX_BYTES = 64 * 1024;
export const HOST_KEY_TIMEOUT_MS = 10_000;

/**
 * Runs a short shell script in the guest; returns its exit code and combined output. The output is
 * collected, so it is capped: past GUEST_SH_MAX_BYTES or GUEST_SH_TIMEOUT_MS the call fails naming `what`.
 */
export async function guestSh(
  agent: AgentPort,
  script: string,
  what: string,
  /** The script's positional parameters ($1…): values never spliced into its text. */
  args: string[] = [],
): Promise<{ code: number | null; output: string }> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  const handle = await agent.exec(
    { argv: ['/bin/sh', '-c', script, ...(args.length ? ['sh', ...args] : [])] },
    {
      stdout: sink,
      stderr: sink,
      limit: { maxBytes: GUEST_SH_MAX_BYTES, timeoutMs: GUEST_SH_TIMEOUT_MS, what },
    },
  );
  const r = await handle.wait();
  return { code: r.exitCode, output: Buffer.concat(chunks).toString().trim() };
}

/** Marks a work disk that holds the image's /root already (seeded on the host when it was made). */
export const WORK_DISK_SEEDED_MARKER = '.banger-seeded';

/** Printed by the start script when the image ships sshd (so `setupSsh` needs no exec of its own to ask). */
export const SSHD_PRESENT = 'banger:sshd-present';
/** Prints SSHD_PRESENT where the image has sshd (the start script and a restore's identity script end with it). */
export const SSHD_PROBE = `if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || [ -x /usr/bin/sshd ]; then echo ${SSHD_PRESENT}; fi`;
/** Printed first when the guest is a banger VM (the cmdline guard), so the host files skip their check. */
const BANGER_GUEST = 'banger:guest';

/**
 * Mounts the work disk at /root on every start (a mount does not outlive a boot). The disk was seeded on
 * the host with the image's /root when it was made, so this is one `mount`; the checks are shell builtins,
 * since every process costs tens of milliseconds in a guest under TCG. A disk made before host seeding
 * (no marker) is seeded here once, from the image's /root, as the original's work-seed did. The guard on
 * /proc/cmdline keeps it to banger guests: the service's tests run the agent on the host itself.
 */
const MOUNT_FUNCTION = `
mount_work() {
read -r cmdline < /proc/cmdline
case " $cmdline " in *" banger.hostname="*) echo ${BANGER_GUEST} ;; *) return 0 ;; esac
[ -b ${WORK_DISK_DEVICE} ] || { echo "no work disk at ${WORK_DISK_DEVICE}"; return 1; }
while read -r dev _; do [ "$dev" = ${WORK_DISK_DEVICE} ] && return 0; done < /proc/mounts
mount -t ext4 ${WORK_DISK_DEVICE} ${WORK_DISK_MOUNT} || return 1
[ -e ${WORK_DISK_MOUNT}/${WORK_DISK_SEEDED_MARKER} ] && return 0
umount ${WORK_DISK_MOUNT}
seed=/run/banger-work
mkdir -p $seed
mount -t ext4 ${WORK_DISK_DEVICE} $seed
cp -a ${WORK_DISK_MOUNT}/. $seed/ 2>/dev/null || true
: > $seed/${WORK_DISK_SEEDED_MARKER}
umount $seed
rmdir $seed
mount -t ext4 ${WORK_DISK_DEVICE} ${WORK_DISK_MOUNT}
}
`;

/**
 * The start-up script: the work disk mount, then with `sshDir` (best effort: a failure shows when
 * authorized_keys is written) root's ssh dir, then whether sshd exists. One exec instead of three: each
 * costs a process in the guest, tens to hundreds of ms under TCG, between the agent answering and the command.
 */
export const startScript = (sshDir: boolean) => `
set -e
${MOUNT_FUNCTION}
mount_work
${sshDir ? '{ mkdir -p /root/.ssh && chmod 0700 /root /root/.ssh; } 2>/dev/null || true' : ''}
${SSHD_PROBE}
`;

/** What the start script found: whether the image has sshd, whether it is a banger VM (the cmdline guard). */
export interface GuestStartFacts {
  hasSshd: boolean;
  bangerGuest: boolean;
}

/** Mounts the work disk, prepares /root/.ssh (with `sshDir`) and says whether sshd exists, in one exec. */
export async function mountWorkDisk(agent: AgentPort, opts: { sshDir: boolean }): Promise<GuestStartFacts> {
  const r = await guestSh(agent, startScript(opts.sshDir), 'the work disk mount');
  const lines = r.output.split('\n');
  const bangerGuest = lines[0] === BANGER_GUEST;
  if (r.code !== 0) {
    const why = lines.filter((l) => l !== BANGER_GUEST && l !== SSHD_PRESENT).join('\n');
    throw operationFailed(`mounting the work disk at ${WORK_DISK_MOUNT} in the guest failed: ${why}`);
  }
  return { hasSshd: lines.at(-1) === SSHD_PRESENT, bangerGuest };
}

/**
 * root's authorized_keys with banger's key (file 0600, owned by root). The start script made /root/.ssh
 * (0700); a write that fails for want of it is reported by the caller like any other.
 */
export async function installAuthorizedKey(agent: AgentPort, publicKey: string): Promise<void> {
  await agent.writeFile('/root/.ssh/authorized_keys', Buffer.from(`${publicKey}\n`), {
    mode: 0o600,
    uid: 0,
    gid: 0,
  });
}

/** Whether the image ships sshd at all (no wait for an image that will never listen on 22). */
export async function hasSshd(agent: AgentPort): Promise<boolean> {
  const r = await guestSh(
    agent,
    'command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || [ -x /usr/bin/sshd ]',
    'the sshd probe',
  );
  return r.code === 0;
}

interface Port {
  protocol: string;
  port: number;
}

/** Polls the agent's listening ports until tcp 22 shows up, for at most timeoutMs; false when it does not. */
export async function waitForSshd(
  agent: AgentPort,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<boolean> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const ports = ((await agent.ports()) ?? []) as Port[];
    if (ports.some((p) => p.port === 22 && p.protocol.startsWith('tcp'))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(250, undefined, { signal: opts.signal });
  }
}

/**
 * The guest's ed25519 host key line (`ssh-ed25519 AAAA…`), read through the agent; undefined when absent
 * or malformed. A guest that breaks the read's limit (the connection is then dropped) is an error.
 */
export async function readHostKey(agent: AgentPort): Promise<string | undefined> {
  let text: string;
  try {
    const limit = { maxBytes: HOST_KEY_MAX_BYTES, timeoutMs: HOST_KEY_TIMEOUT_MS };
    text = (await agent.readFile(GUEST_HOST_KEY, limit)).toString('utf8').trim();
  } catch (err) {
    if (agent.closed) throw err;
    return undefined;
  }
  const [type, key] = text.split(/\s+/);
  if (type !== 'ssh-ed25519' || !key || !/^[A-Za-z0-9+/=]+$/.test(key)) return undefined;
  return `${type} ${key}`;
}
