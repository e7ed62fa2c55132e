/**
 * An image made by `banger image import` boots: the Alpine minirootfs imported through the CLI and daemon
 * (rootfs builder + guest assets), booted under QEMU TCG with the test kernel and banger's initramfs and the
 * agent's init shim; the agent answers over virtio-serial and runs `cat /etc/alpine-release`, then writes,
 * fsyncs and reads back 100 MB on the image banger's ext4 writer made.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentClient, GUEST_INIT_SHIM_PATH } from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { ALPINE_TARBALL } from '../fixtures/images.js';
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
import { ALPINE_AMD64 } from '../fixtures/shared.js';
import { missingShared } from '../fixtures/skip.js';

const runner = createRunner();

async function probe(): Promise<string | undefined> {
  // Importing a rootfs tarball is covered without ../shared (image-cli, busybox rootfs); this boots Alpine's.
  if (!existsSync(ALPINE_TARBALL)) return missingShared(ALPINE_AMD64);
  return probeQemuGuest(runner, {
    tools: ['qemu-system-x86_64', 'mkfs.ext4', 'debugfs', 'apt-get', 'depmod'],
  });
}

const skipReason = await probe();

describe.skipIf(skipReason !== undefined)(
  `an imported image boots${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let kernel: TestKernel;
    let inst: BangerInstance;
    let work: string;
    let qemu: ChildProcess | undefined;
    let client: AgentClient | undefined;

    beforeAll(async () => {
      kernel = await ensureTestKernel();
      inst = createInstance();
      work = await mkdtemp(join(tmpdir(), 'bgr-boot-'));
    });
    afterAll(async () => {
      client?.close();
      if (qemu && qemu.exitCode === null) {
        qemu.kill('SIGKILL');
        await new Promise((r) => qemu?.once('exit', r));
      }
      await inst?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('banger image import alp <alpine tarball>, then the agent in the guest prints 3.20.3', async () => {
      const r = await inst.cli(['image', 'import', 'alp', ALPINE_TARBALL]);
      expect(r.exitCode, r.stderr).toBe(0);
      const { image } = JSON.parse((await inst.cli(['image', 'show', 'alp', '--json'])).stdout);
      const disk = join(work, 'root.ext4');
      await runner.run(['cp', '--sparse=always', image.artifacts.rootfsPath, disk]);
      const socketPath = join(work, 'agent.sock');
      const cmdline = `console=ttyS0 root=/dev/vda rw panic=-1 init=${GUEST_INIT_SHIM_PATH} banger.hostname=alp`;
      const vm = spawnQemu(runner, [...q35Args({ kernel, cmdline, disk }), ...agentSerialArgs(socketPath)]);
      qemu = vm.child;
      await waitForSocket(socketPath, vm.child);
      client = await connectGuestAgent(socketPath, vm.console, 120_000);
      const result = await execCollect(client, { argv: ['cat', '/etc/alpine-release'] });
      expect(result).toMatchObject({ exitCode: 0 });
      expect(result.stdout.trim()).toBe('3.20.3');
    });

    it('the guest writes, fsyncs and reads back 100 MB on the filesystem banger wrote', async () => {
      // Read back after dropping the page cache, so the bytes come from the blocks the kernel allocated in
      // banger's bitmaps and extent trees, not from memory.
      const script = [
        'dd if=/dev/urandom of=/root/big bs=1M count=100 conv=fsync 2>/dev/null',
        'a=$(sha256sum /root/big | cut -d" " -f1)',
        'sync',
        'echo 3 > /proc/sys/vm/drop_caches',
        'b=$(sha256sum /root/big | cut -d" " -f1)',
        'stat -c %s /root/big',
        '[ "$a" = "$b" ] && echo same',
        'rm /root/big && sync',
      ].join(' && ');
      const result = await execCollect(client!, { argv: ['sh', '-c', script] });
      expect(result, result.stderr).toMatchObject({ exitCode: 0 });
      expect(result.stdout.trim().split('\n')).toEqual(['104857600', 'same']);
    });
  },
);
