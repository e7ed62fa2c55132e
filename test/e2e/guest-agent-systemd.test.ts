/**
 * The agent under systemd, without the init shim: a Debian bookworm minbase + systemd-sysv tree (debootstrap,
 * cached under $BANGER_TEST_CACHE), guestAssets() injected with the rootfs builder's debugfs pass, booted
 * with the image's own /sbin/init under QEMU TCG. The agent must come up from its unit in
 * multi-user.target.wants, apply the kernel command line settings, and power the guest off through systemd.
 * The guest has no NIC: first boot cannot reach a mirror, so its marker must stay for the next boot.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIRST_BOOT_MARKER_PATH, guestAssets } from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';
import { injectAssets } from '../../src/rootfs/index.js';
import { ensureDebianTree } from '../fixtures/debian-tree.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';
import {
  agentSerialArgs,
  connectGuestAgent,
  execCollect,
  probeQemuGuest,
  q35Args,
  spawnQemu,
  waitForSocket,
} from '../fixtures/qemu-guest.js';

const runner = createRunner();

async function probe(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'debootstrap needs root';
  return probeQemuGuest(runner, {
    tools: ['qemu-system-x86_64', 'mkfs.ext4', 'debugfs', 'debootstrap', 'apt-get', 'depmod'],
    agent: true,
  });
}

const skipReason = await probe();
if (skipReason) console.warn(`guest-agent systemd e2e skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('banger-agent started by systemd in a Debian guest', () => {
  let kernel: TestKernel;
  let work: string;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    kernel = await ensureTestKernel();
    // debootstrap minbase + systemd-sysv, built once (about a minute) and cached.
    const tree = await ensureDebianTree({ include: ['systemd-sysv'], tag: 'systemd' });
    work = await mkdtemp(join(tmpdir(), 'banger-agent-systemd-'));
    const disk = join(work, 'root.ext4');
    await runner.run(['mkfs.ext4', '-q', '-F', '-L', 'bangerdeb', '-d', tree, disk, '1G']);
    await injectAssets(disk, guestAssets(), runner);
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('comes up from its unit, reports healthy with the settings applied, and powers off through systemd', async () => {
    const socketPath = join(work, 'agent.sock');
    const cmdline = [
      'console=ttyS0',
      'root=/dev/vda',
      'rw',
      'panic=-1',
      'init=/sbin/init',
      'banger.hostname=deb-e2e',
      'banger.dns=192.0.2.53',
    ].join(' ');
    const disk = join(work, 'root.ext4');
    const vm = spawnQemu(runner, [
      ...q35Args({ kernel, cmdline, disk, smp: 2, memoryMiB: 1024 }),
      ...agentSerialArgs(socketPath),
    ]);
    child = vm.child;
    exited = vm.exited;
    await waitForSocket(socketPath, vm.child);
    const client = await connectGuestAgent(socketPath, vm.console, 180_000);
    const health = await client.health();
    expect(health.pid1).toBe(false);
    expect(health.hostname).toBe('deb-e2e');
    expect(health.bootPhasesMs.shimStart).toBeUndefined();

    const state = await execCollect(client, {
      argv: [
        'sh',
        '-c',
        'readlink /proc/1/exe; systemctl is-active banger-agent.service; cat /etc/resolv.conf',
      ],
    });
    expect(state.stdout).toContain('systemd');
    expect(state.stdout).toContain('\nactive\n');
    expect(state.stdout).toContain('nameserver 192.0.2.53');

    // No mirror reachable from a NIC-less guest: first boot fails and keeps its marker for the next boot.
    const marker = await execCollect(client, { argv: ['test', '-e', FIRST_BOOT_MARKER_PATH] });
    expect(marker.exitCode).toBe(0);

    await client.shutdown();
    await exited;
    expect(vm.child.exitCode).toBe(0);
  });
});
