import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { createRunner, type Runner } from '../host/index.js';
import type { HostProbe } from './host-probe.js';

/** The kernel prints this as its first console line; seeing it means KVM really runs guest code. */
const KERNEL_BANNER = 'Linux version';
/**
 * Under working KVM the banner appears well within a second. Where KVM is present but broken (nested
 * PVM hosts run the BIOS and then nothing, e2e-notes §6.1) the guest hangs, so the wait is bounded.
 */
export const KVM_PROBE_TIMEOUT_MS = 10_000;

export interface KvmVerdict {
  usable: boolean;
  reason: string;
}

export interface KvmProbeOptions {
  kernel: string;
  initrd?: string;
  timeoutMs?: number;
  runner?: Runner;
  qemuBin?: string;
  /** Host facts, to answer without booting when /dev/kvm is missing or closed to us. */
  host?: Pick<HostProbe, 'kvmDevice' | 'qemu'>;
  cache?: KvmProbeCache;
}

const cacheFileSchema = z.record(z.string(), z.object({ usable: z.boolean(), reason: z.string() }));

/** Probe verdicts on disk, keyed by kernel digest + QEMU version + host kernel: booting costs seconds. */
export interface KvmProbeCache {
  get(key: string): Promise<KvmVerdict | undefined>;
  set(key: string, verdict: KvmVerdict): Promise<void>;
}

/** A small JSON file (written atomically) that remembers probe verdicts. A corrupt file counts as empty. */
export function createKvmProbeCache(file: string): KvmProbeCache {
  const load = async () => {
    try {
      return cacheFileSchema.parse(JSON.parse(await readFile(file, 'utf8')));
    } catch {
      return {};
    }
  };
  return {
    async get(key) {
      return (await load())[key];
    },
    async set(key, verdict) {
      const all = await load();
      all[key] = verdict;
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
    },
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The cache key: the same kernel under the same QEMU on the same host kernel behaves the same. */
export async function kvmProbeKey(kernel: string, qemuVersion: string): Promise<string> {
  return `${await sha256File(kernel)}:qemu-${qemuVersion}:host-${release()}`;
}

/** Boots the kernel under `-accel kvm` and waits for its banner on the serial console. */
async function bootUnderKvm(opts: KvmProbeOptions, qemuBin: string, runner: Runner): Promise<KvmVerdict> {
  const timeoutMs = opts.timeoutMs ?? KVM_PROBE_TIMEOUT_MS;
  const argv = [
    qemuBin,
    ...['-M', 'microvm,accel=kvm,acpi=on,isa-serial=on', '-cpu', 'host', '-smp', '1', '-m', '256'],
    ...['-display', 'none', '-nodefaults', '-no-user-config', '-no-reboot', '-serial', 'stdio'],
    ...['-kernel', opts.kernel, ...(opts.initrd ? ['-initrd', opts.initrd] : [])],
    // No root: once the banner is out the guest may panic and (-no-reboot, panic=-1) QEMU exits.
    ...['-append', 'console=ttyS0 earlyprintk=ttyS0 panic=-1 rdinit=/nonexistent init=/nonexistent'],
  ];
  const child = runner.spawn(argv, { pipe: true });
  child.stdin?.end();
  let output = '';
  return await new Promise<KvmVerdict>((resolve) => {
    let done = false;
    const finish = (verdict: KvmVerdict) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve(verdict);
    };
    const timer = setTimeout(
      () =>
        finish({
          usable: false,
          reason: `/dev/kvm is present but a guest kernel printed nothing within ${timeoutMs / 1000} s under KVM (nested or broken virtualisation)`,
        }),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      output += d.toString('utf8');
      if (output.includes(KERNEL_BANNER)) finish({ usable: true, reason: 'a test guest booted under KVM' });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) =>
      finish({ usable: false, reason: `could not run ${qemuBin}: ${err.message}` }),
    );
    child.once('exit', () => {
      // stdout may still hold the banner; give the stream its last chunk before judging.
      setImmediate(() => {
        const lines = output.trim().split('\n');
        // QEMU's own complaint (e.g. `failed to set MSR`) is the reason a user can act on.
        const last = (lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? '').trim().slice(0, 200);
        finish({
          usable: output.includes(KERNEL_BANNER),
          reason: output.includes(KERNEL_BANNER)
            ? 'a test guest booted under KVM'
            : `/dev/kvm is present but QEMU with KVM failed before the guest kernel ran${last ? ` (${last})` : ''}`,
        });
      });
    });
  });
}

/**
 * Is KVM usable for real? /dev/kvm existing is not enough (nested hosts run firmware and then hang), so
 * this boots the given kernel under KVM with a short timeout and looks for its banner. Cached per kernel,
 * QEMU version and host kernel when given a cache.
 */
export async function probeKvm(opts: KvmProbeOptions): Promise<KvmVerdict> {
  if (opts.host?.kvmDevice === 'absent') return { usable: false, reason: 'no /dev/kvm on this host' };
  if (opts.host?.kvmDevice === 'no-access')
    return { usable: false, reason: '/dev/kvm is not readable and writable by this user (join group kvm)' };
  const runner = opts.runner ?? createRunner();
  const qemuBin = opts.host?.qemu?.path ?? opts.qemuBin ?? 'qemu-system-x86_64';
  let version = opts.host?.qemu?.version;
  if (!version && opts.cache) {
    const out = await runner.run([qemuBin, '--version'], { allowFailure: true });
    version = /version (\S+)/.exec(out.stdout)?.[1] ?? 'unknown';
  }
  const key = opts.cache ? await kvmProbeKey(opts.kernel, version ?? 'unknown') : undefined;
  if (key && opts.cache) {
    const hit = await opts.cache.get(key);
    if (hit) return hit;
  }
  const verdict = await bootUnderKvm(opts, qemuBin, runner);
  if (key && opts.cache) await opts.cache.set(key, verdict);
  return verdict;
}

/** The daemon keeps its verdicts in `<stateDir>/kvm-probe.json`; doctor reads the same file. */
export function kvmProbeCachePath(stateDir: string): string {
  return `${stateDir}/kvm-probe.json`;
}

/** A view of a cache that never writes (doctor is read-only). */
export function readOnlyKvmProbeCache(cache: KvmProbeCache): KvmProbeCache {
  return { get: (key) => cache.get(key), set: async () => {} };
}
