/**
 * The agent under systemd, without the init shim: a Debian bookworm minbase + systemd-sysv tree (debootstrap,
 * cached under $BANGER_TEST_CACHE), guestAssets() injected with the rootfs builder's debugfs pass, booted
 * with the image's own /sbin/init under QEMU TCG. The agent must come up from its unit in
 * multi-user.target.wants, apply the kernel command line settings, and power the guest off through systemd.
 * The guest has no NIC: first boot cannot reach a mirror, so its marker must stay for the next boot.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentClient,
  agentBinaryPath,
  type ExecRequest,
  FIRST_BOOT_MARKER_PATH,
  guestAssets,
  waitForAgent,
} from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';
import { injectAssets } from '../../src/rootfs/index.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';

const runner = createRunner();

async function probe(): Promise<string | undefined> {
  for (const tool of ['qemu-system-x86_64', 'mkfs.ext4', 'debugfs', 'debootstrap', 'apt-get', 'depmod']) {
    const r = await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.exitCode !== 0) return `${tool} is not installed`;
  }
  if (process.getuid?.() !== 0) return 'debootstrap needs root';
  const apt = await runner.run(['apt-cache', 'show', 'linux-image-cloud-amd64'], { allowFailure: true });
  if (apt.exitCode !== 0) return 'apt does not know linux-image-cloud-amd64 (no Debian sources)';
  if (!existsSync(agentBinaryPath())) {
    const built = await runner.run(['make', '-s', '-C', join(agentBinaryPath(), '..', '..')], {
      allowFailure: true,
    });
    if (built.exitCode !== 0) return `the agent does not build: ${built.stderr.trim()}`;
  }
  return undefined;
}

const skipReason = await probe();
if (skipReason) console.warn(`guest-agent systemd e2e skipped: ${skipReason}`);

/** debootstrap minbase + systemd-sysv, built once (about a minute) and cached by atomic rename. */
async function ensureSystemdTree(): Promise<string> {
  const cache = process.env.BANGER_TEST_CACHE || '/var/tmp/banger-test-cache';
  const tree = join(cache, 'rootfs-debootstrap-bookworm-minbase-systemd');
  const done = `${tree}.complete`;
  if (
    await access(done).then(
      () => true,
      () => false,
    )
  )
    return tree;
  await mkdir(cache, { recursive: true });
  const tmp = await mkdtemp(join(cache, 'rootfs-debootstrap-tmp-'));
  try {
    await runner.run(
      [
        'debootstrap',
        '--variant=minbase',
        '--include=systemd-sysv',
        'bookworm',
        tmp,
        'http://deb.debian.org/debian',
      ],
      { timeoutMs: 15 * 60_000 },
    );
    await rm(tree, { recursive: true, force: true });
    await rename(tmp, tree);
    await writeFile(done, '');
    return tree;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function run(client: AgentClient, req: ExecRequest) {
  const out = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (d: Buffer) => {
    chunks.out += d.toString();
  });
  const err = new PassThrough();
  err.on('data', (d: Buffer) => {
    chunks.err += d.toString();
  });
  const result = await client.exec(req, { stdout: out, stderr: err }).wait();
  return { ...result, stdout: chunks.out, stderr: chunks.err };
}

describe.skipIf(skipReason !== undefined)('banger-agent started by systemd in a Debian guest', () => {
  let kernel: TestKernel;
  let work: string;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  beforeAll(async () => {
    kernel = await ensureTestKernel();
    const tree = await ensureSystemdTree();
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
    child = runner.spawn(
      [
        'qemu-system-x86_64',
        ...['-M', 'q35,accel=tcg', '-cpu', 'max', '-smp', '2', '-m', '1024'],
        ...['-display', 'none', '-no-reboot', '-nodefaults', '-no-user-config', '-serial', 'stdio'],
        ...['-kernel', kernel.kernelPath, '-initrd', kernel.initrdPath, '-append', cmdline],
        ...['-drive', `file=${join(work, 'root.ext4')},if=none,id=root,format=raw`],
        ...['-device', 'virtio-blk-pci,drive=root', '-device', 'virtio-serial-pci'],
        ...['-chardev', `socket,id=agent0,path=${socketPath},server=on,wait=off`],
        ...['-device', 'virtserialport,chardev=agent0,name=org.banger.agent'],
      ],
      { pipe: true },
    );
    const c = child;
    c.stdout?.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    c.stderr?.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    c.stdin?.end();
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    for (let i = 0; i < 200 && !existsSync(socketPath) && c.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 50));

    let client: AgentClient;
    try {
      client = await waitForAgent({ kind: 'virtio-serial', socketPath }, { timeoutMs: 180_000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- console ---\n${output}`);
    }
    const health = await client.health();
    expect(health.pid1).toBe(false);
    expect(health.hostname).toBe('deb-e2e');
    expect(health.bootPhasesMs.shimStart).toBeUndefined();

    const state = await run(client, {
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
    const marker = await run(client, { argv: ['test', '-e', FIRST_BOOT_MARKER_PATH] });
    expect(marker.exitCode).toBe(0);

    await client.shutdown();
    await exited;
    expect(c.exitCode).toBe(0);
  });
});
