/**
 * probeKvm boots the test kernel under `-accel kvm` for real. On hosts of this kind /dev/kvm is missing
 * (an immediate "unusable") or exists but guests cannot run (nested PVM: "unusable" with QEMU's reason);
 * on a host with working KVM it is "usable". Which one this host gives cannot be known in advance, so
 * every verdict is also proven deterministically: stand-in QEMUs act out a guest that boots, one that
 * hangs, and one QEMU refuses, each through the same probe, each checked for its exact verdict and cache.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { createKvmProbeCache, type HostProbe, probeHost, probeKvm } from '../../src/vmm/index.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';

const runner = createRunner();

async function probe(): Promise<string | undefined> {
  for (const tool of ['qemu-system-x86_64', 'apt-get', 'dpkg-deb', 'depmod']) {
    const r = await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.exitCode !== 0) return `${tool} is not installed`;
  }
  if (!existsSync('/bin/busybox')) return '/bin/busybox (busybox-static) is not installed';
  return undefined;
}
const skipReason = await probe();
if (skipReason) console.warn(`vmm-kvm-probe skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('probeKvm on this host', () => {
  let kernel: TestKernel;
  let host: HostProbe;
  let dir: string;

  beforeAll(async () => {
    kernel = await ensureTestKernel();
    host = await probeHost({
      config: { qemu_bin: 'qemu-system-x86_64', firecracker_bin: 'firecracker' },
      runner,
    });
    dir = await mkdtemp(join(tmpdir(), 'bgr-kvmprobe-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives a verdict with a reason a user can read, and caches it', async () => {
    const file = join(dir, 'kvm-probe.json');
    const cache = createKvmProbeCache(file);
    const verdict = await probeKvm({
      kernel: kernel.kernelPath,
      initrd: kernel.initrdPath,
      host,
      runner,
      cache,
    });
    console.info(`KVM verdict on this host: ${JSON.stringify(verdict)}`);
    if (host.kvmDevice === 'absent')
      expect(verdict).toEqual({ usable: false, reason: 'no /dev/kvm on this host' });
    if (!verdict.usable) expect(verdict.reason).toMatch(/kvm/i);
    else expect(verdict.reason).toBe('a test guest booted under KVM');

    // Only a verdict that cost a boot is cached; without /dev/kvm the answer is immediate and nothing is written.
    if (host.kvmDevice === 'present') {
      const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      expect(Object.values(stored)).toEqual([verdict]);
    } else {
      expect(existsSync(file)).toBe(false);
    }
    expect(
      await probeKvm({ kernel: kernel.kernelPath, initrd: kernel.initrdPath, host, runner, cache }),
    ).toEqual(verdict);
  });

  it('leaves no QEMU behind', async () => {
    const ps = await runner.run(['pgrep', '-f', `-kernel ${kernel.kernelPath} .*rdinit=/nonexistent`], {
      allowFailure: true,
    });
    expect(ps.stdout.trim()).toBe('');
  });
});

describe('probeKvm gives each verdict for what QEMU under KVM does (stand-in QEMUs)', () => {
  let dir: string;
  let kernel: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bgr-kvmverdict-'));
    kernel = join(dir, 'vmlinuz');
    await writeFile(kernel, 'not a kernel: the stand-ins never read it');
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A `qemu-system-x86_64` whose whole behaviour is the shell script `body`. */
  async function standInQemu(name: string, body: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  }
  const verdictOf = async (qemu: string, cacheFile: string) =>
    probeKvm({
      kernel,
      host: { kvmDevice: 'present', qemu: { path: qemu, version: 'stand-in' } },
      runner,
      cache: createKvmProbeCache(join(dir, cacheFile)),
      timeoutMs: 1_500,
    });

  it('a guest whose kernel banner reaches the console: usable, and cached', async () => {
    const qemu = await standInQemu(
      'boots',
      'echo "[    0.000000] Linux version 6.1.0 (stand-in)"; exec sleep 30',
    );
    const verdict = await verdictOf(qemu, 'boots.json');
    expect(verdict).toEqual({ usable: true, reason: 'a test guest booted under KVM' });
    const stored = JSON.parse(await readFile(join(dir, 'boots.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.values(stored)).toEqual([verdict]);
  });

  it('a guest that prints nothing (nested virtualisation hangs): unusable once the wait is over', async () => {
    const qemu = await standInQemu('hangs', 'exec sleep 30');
    expect(await verdictOf(qemu, 'hangs.json')).toEqual({
      usable: false,
      reason:
        '/dev/kvm is present but a guest kernel printed nothing within 1.5 s under KVM (nested or broken virtualisation)',
    });
  });

  it("QEMU refusing KVM: unusable, with QEMU's own complaint as the reason", async () => {
    const qemu = await standInQemu(
      'refuses',
      'echo "qemu-system-x86_64: error: failed to set MSR 0x48b to 0x1" >&2; exit 1',
    );
    expect(await verdictOf(qemu, 'refuses.json')).toEqual({
      usable: false,
      reason:
        '/dev/kvm is present but QEMU with KVM failed before the guest kernel ran (qemu-system-x86_64: error: failed to set MSR 0x48b to 0x1)',
    });
  });

  it('leaves none of the stand-ins running', async () => {
    const ps = await runner.run(['pgrep', '-f', dir], { allowFailure: true });
    expect(ps.stdout.trim()).toBe('');
  });
});
