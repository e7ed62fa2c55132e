/**
 * Boots the Debian cloud kernel with banger's initramfs under QEMU TCG (q35 and microvm) into a tiny busybox
 * root filesystem whose init prints a marker, its addresses and its root mount to the serial console, then
 * powers off. Proves: module order, root mount (rw), `init=`, and `banger.ip=` configuring the NIC.
 * The NIC hangs off an empty QEMU hub: no packet leaves the guest.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import { buildBusyboxRoot } from '../fixtures/busybox-guest.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';
import { probeQemuGuest, q35Args, spawnQemu } from '../fixtures/qemu-guest.js';

const runner = createRunner();
const MARKER = 'BANGER-E2E-KERNEL-BOOT-OK';

async function probe(): Promise<string | undefined> {
  const busybox = await readFile('/bin/busybox').catch(() => undefined);
  if (!busybox) return '/bin/busybox (busybox-static) is not installed';
  return probeQemuGuest(runner, {
    tools: ['qemu-system-x86_64', 'mkfs.ext4', 'apt-get', 'dpkg-deb', 'depmod'],
  });
}

const skipReason = await probe();
if (skipReason) console.warn(`kernel-boot e2e skipped: ${skipReason}`);

/** The host TSC frequency in kHz: microvm under TCG cannot calibrate it when the host is busy. */
async function hostTscKhz(): Promise<number> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8');
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1] ?? '2000');
  return Math.round(mhz * 1000);
}

/** Runs QEMU until the guest powers off (or a generous guard expires), returning the serial output. */
async function boot(argv: string[]): Promise<{ output: string; child: ChildProcess }> {
  const guest = spawnQemu(runner, argv);
  const { child } = guest;
  // A guard against a hung guest, not an assertion: a TCG boot takes 3-10 s, 120 s is the agreed budget.
  const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
  await guest.exited;
  clearTimeout(guard);
  return { output: guest.console(), child };
}

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skipReason !== undefined)('Debian cloud kernel + banger initramfs under QEMU TCG', () => {
  let kernel: TestKernel;
  let work: string;
  let rootImg: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    kernel = await ensureTestKernel();
    work = await mkdtemp(join(tmpdir(), 'banger-kernel-boot-'));
    const init = [
      '#!/bin/busybox sh',
      '/bin/busybox mount -t proc proc /proc 2>/dev/null',
      `echo "${MARKER}"`,
      '/bin/busybox ip addr show dev eth0',
      '/bin/busybox ip route',
      'echo "ROOTMOUNT $(/bin/busybox grep " / " /proc/mounts)"',
      'echo "PORTS $(/bin/busybox cat /sys/class/virtio-ports/*/name 2>/dev/null)"',
      'echo "RNG $(/bin/busybox cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"',
      '/bin/busybox poweroff -f',
      '',
    ].join('\n');
    rootImg = await buildBusyboxRoot(runner, work, init);
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (work) await rm(work, { recursive: true, force: true });
  });

  const cmdline = (root: string[], extra: string[] = []) =>
    [
      'console=ttyS0',
      ...root,
      'panic=-1',
      'init=/banger-test-init',
      'banger.ip=172.31.7.2/24,172.31.7.1,eth0',
      ...extra,
    ].join(' ');

  function expectBooted(output: string, mode: 'ro' | 'rw'): void {
    expect(output).toContain(MARKER);
    expect(output).toMatch(/inet 172\.31\.7\.2\/24 .*eth0/);
    expect(output).toContain('default via 172.31.7.1 dev eth0');
    expect(output).toMatch(new RegExp(`ROOTMOUNT \\S+ / ext4 ${mode},`));
    expect(output).not.toContain('Unknown symbol');
  }

  it('boots on q35 with virtio-pci devices, root=/dev/vda read-write', async () => {
    const { output, child } = await boot([
      ...q35Args({ kernel, cmdline: cmdline(['root=/dev/vda', 'rw']), disk: rootImg }),
      ...['-netdev', 'hubport,id=n0,hubid=0', '-device', 'virtio-net-pci,netdev=n0'],
      ...['-device', 'virtio-serial-pci', '-chardev', 'null,id=agent0'],
      ...['-device', 'virtserialport,chardev=agent0,name=org.banger.agent', '-device', 'virtio-rng-pci'],
    ]);
    children.push(child);
    expectBooted(output, 'rw');
    // virtio_console and virtio-rng came up: the agent's virtio-serial port is visible by name.
    expect(output).toContain('PORTS org.banger.agent');
    expect(output).toMatch(/RNG virtio_rng/);
    expect(isAlive(child.pid)).toBe(false);
  });

  it('boots on microvm with virtio-mmio devices, root by LABEL, read-only', async () => {
    const { output, child } = await boot([
      'qemu-system-x86_64',
      ...['-M', 'microvm,accel=tcg,acpi=on,rtc=on,isa-serial=on', '-cpu', 'max', '-smp', '1', '-m', '512'],
      ...['-display', 'none', '-no-reboot', '-nodefaults', '-no-user-config', '-serial', 'stdio'],
      ...['-kernel', kernel.kernelPath, '-initrd', kernel.initrdPath],
      ...[
        '-append',
        cmdline(['root=LABEL=bangertest', 'rootfstype=ext4', 'ro'], [`tsc_early_khz=${await hostTscKhz()}`]),
      ],
      ...['-drive', `file=${rootImg},if=none,id=root,format=raw`, '-device', 'virtio-blk-device,drive=root'],
      ...['-netdev', 'hubport,id=n0,hubid=0', '-device', 'virtio-net-device,netdev=n0'],
    ]);
    children.push(child);
    expectBooted(output, 'ro');
    expect(isAlive(child.pid)).toBe(false);
  });
});
