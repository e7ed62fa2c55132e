/**
 * An image made by `banger image import` boots: the Alpine minirootfs imported through the CLI and daemon
 * (rootfs builder + guest assets), booted under QEMU TCG with the test kernel and banger's initramfs and the
 * agent's init shim; the agent answers over virtio-serial and runs `cat /etc/alpine-release`.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentClient, GUEST_INIT_SHIM_PATH, waitForAgent } from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { ALPINE_TARBALL } from '../fixtures/images.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';

const runner = createRunner();

async function probe(): Promise<string | undefined> {
  for (const tool of ['qemu-system-x86_64', 'mkfs.ext4', 'debugfs', 'apt-get', 'depmod']) {
    const r = await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.exitCode !== 0) return `${tool} is not installed`;
  }
  if (!existsSync(ALPINE_TARBALL)) return 'the shared Alpine testdata is missing';
  const apt = await runner.run(['apt-cache', 'show', 'linux-image-cloud-amd64'], { allowFailure: true });
  if (apt.exitCode !== 0) return 'apt does not know linux-image-cloud-amd64 (no Debian sources)';
  return undefined;
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
      qemu = runner.spawn(
        [
          'qemu-system-x86_64',
          ...['-M', 'q35,accel=tcg', '-cpu', 'max', '-smp', '1', '-m', '512'],
          ...['-display', 'none', '-no-reboot', '-nodefaults', '-no-user-config', '-serial', 'stdio'],
          ...['-kernel', kernel.kernelPath, '-initrd', kernel.initrdPath, '-append', cmdline],
          ...['-drive', `file=${disk},if=none,id=root,format=raw`, '-device', 'virtio-blk-pci,drive=root'],
          ...['-device', 'virtio-serial-pci'],
          ...['-chardev', `socket,id=agent0,path=${socketPath},server=on,wait=off`],
          ...['-device', 'virtserialport,chardev=agent0,name=org.banger.agent'],
        ],
        { pipe: true },
      );
      let output = '';
      qemu.stdout?.on('data', (d: Buffer) => {
        output += d.toString('utf8');
      });
      qemu.stderr?.on('data', (d: Buffer) => {
        output += d.toString('utf8');
      });
      qemu.stdin?.end();
      for (let i = 0; i < 200 && !existsSync(socketPath) && qemu.exitCode === null; i++) {
        await new Promise((res) => setTimeout(res, 50));
      }
      try {
        client = await waitForAgent({ kind: 'virtio-serial', socketPath }, { timeoutMs: 120_000 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- console ---\n${output}`);
      }
      const out = new PassThrough();
      let stdout = '';
      out.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      const result = await client
        .exec({ argv: ['cat', '/etc/alpine-release'] }, { stdout: out, stderr: new PassThrough() })
        .wait();
      expect(result).toMatchObject({ exitCode: 0 });
      expect(stdout.trim()).toBe('3.20.3');
    });
  },
);
