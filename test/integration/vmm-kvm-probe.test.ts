/**
 * probeKvm boots the test kernel under `-accel kvm` for real. On the CI host /dev/kvm exists but guests
 * cannot run (nested PVM), so the verdict there is "unusable" with QEMU's own reason; on a host with
 * working KVM it is "usable". Either way the verdict is cached per kernel + QEMU version.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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
