/**
 * The guest agent inside a real VM: the Debian cloud kernel + banger's initramfs under QEMU TCG (q35), an
 * ext4 root made from a busybox userland (guestRootSource: Alpine's minirootfs or the busybox rootfs) plus
 * guestAssets() (injected with the rootfs builder's debugfs pass), and the agent reached over a virtio-serial port backed by a host unix socket. Boots twice: the init shim handing over to the image's
 * own init (busybox), and the shim staying PID 1 (`banger.init=none`). The NIC-less guest sends no packets.
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentClient,
  type Frame,
  FrameDecoder,
  FrameType,
  GUEST_AGENT_PATH,
  GUEST_INIT_SHIM_PATH,
  guestAssets,
} from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';
import { injectAssets } from '../../src/rootfs/index.js';
import { type GuestRootSource, guestRootSource } from '../fixtures/guest-root.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';
import {
  agentSerialArgs,
  connectGuestAgent,
  probeQemuGuest,
  type QemuGuest,
  q35Args,
  execCollect as run,
  spawnQemu,
  waitForSocket,
} from '../fixtures/qemu-guest.js';

const runner = createRunner();

async function probe(): Promise<string | undefined> {
  return probeQemuGuest(runner, {
    tools: ['qemu-system-x86_64', 'mkfs.ext4', 'apt-get', 'dpkg-deb', 'depmod', 'tar'],
    agent: true,
  });
}

const skipReason = await probe();
if (skipReason) console.warn(`guest-agent e2e skipped: ${skipReason}`);

interface Vm extends QemuGuest {
  socketPath: string;
}

describe.skipIf(skipReason !== undefined)('banger-agent in a QEMU TCG guest over virtio-serial', () => {
  let kernel: TestKernel;
  let work: string;
  let root: GuestRootSource;
  const vms: Vm[] = [];

  beforeAll(async () => {
    kernel = await ensureTestKernel();
    work = await mkdtemp(join(tmpdir(), 'banger-agent-e2e-'));
    const tree = join(work, 'rootfs');
    await mkdir(tree);
    root = await guestRootSource();
    await runner.run(['tar', '-xzf', root.tarball, '-C', tree, '--numeric-owner']);
    await runner.run([
      'mkfs.ext4',
      '-q',
      '-F',
      '-L',
      'bangeragent',
      '-d',
      tree,
      join(work, 'base.ext4'),
      '64M',
    ]);
    // Everything guestAssets() lists (agent, shim, systemd/OpenRC hooks), written the way image builds do it.
    await injectAssets(join(work, 'base.ext4'), guestAssets(), runner);
  });

  afterAll(async () => {
    for (const vm of vms)
      if (vm.child.exitCode === null && vm.child.signalCode === null) vm.child.kill('SIGKILL');
    await Promise.all(vms.map((vm) => vm.exited));
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function boot(name: string, extraCmdline: string[]): Promise<Vm> {
    const disk = join(work, `${name}.ext4`);
    await copyFile(join(work, 'base.ext4'), disk);
    const socketPath = join(work, `${name}.agent.sock`);
    const cmdline = [
      'console=ttyS0',
      'root=/dev/vda',
      'rw',
      'panic=-1',
      `init=${GUEST_INIT_SHIM_PATH}`,
      'banger.hostname=agent-e2e',
      'banger.dns=192.0.2.53',
      'banger.ip=10.0.2.15/24,10.0.2.2,eth0',
      ...extraCmdline,
    ].join(' ');
    const vm: Vm = {
      ...spawnQemu(runner, [
        ...q35Args({ kernel, cmdline, disk }),
        // A NIC on an empty QEMU hub: eth0 with a carrier, and no traffic leaves the VM.
        ...['-netdev', 'hubport,id=net0,hubid=0', '-device', 'virtio-net-pci,netdev=net0'],
        ...agentSerialArgs(socketPath),
      ]),
      socketPath,
    };
    vms.push(vm);
    await waitForSocket(socketPath, vm.child);
    return vm;
  }

  function connect(vm: Vm): Promise<AgentClient> {
    return connectGuestAgent(vm.socketPath, vm.console, 120_000);
  }

  it('runs commands through the init shim handing over to the image init, then powers off', async () => {
    const vm = await boot('handover', []);
    const client = await connect(vm);
    const health = await client.health();
    expect(health.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(health.pid1).toBe(false);
    expect(health.hostname).toBe('agent-e2e');
    expect(health.bootPhasesMs.agentStart).toBeGreaterThan(0);
    expect(health.bootPhasesMs.configApplied).toBeGreaterThanOrEqual(health.bootPhasesMs.agentStart ?? 0);
    // banger's initramfs applied banger.ip= before switch_root; the agent saw it and left it alone.
    expect(health.network).toBe('already');

    const osRelease = await run(client, { argv: ['cat', '/etc/os-release'] });
    expect(osRelease).toMatchObject({ exitCode: 0, signal: null, stderr: '' });
    expect(osRelease.stdout).toContain(root.flavour === 'alpine' ? 'ID=alpine' : 'ID=banger-busybox');

    // PID 1 is the image's own init (busybox), the settings from the command line are applied.
    const state = await run(client, {
      argv: ['sh', '-c', 'readlink /proc/1/exe; hostname; cat /etc/resolv.conf; grep agent-e2e /etc/hosts'],
    });
    expect(state.stdout).toContain('/bin/busybox');
    expect(state.stdout).toContain('agent-e2e');
    expect(state.stdout).toContain('nameserver 192.0.2.53');

    // Several streams share the one port; exit codes, stderr and stdin stay with their own command.
    const results = await Promise.all([
      run(client, { argv: ['sh', '-c', 'echo one; echo oops >&2; exit 7'] }),
      run(client, { argv: ['sh', '-c', 'tr a-z A-Z'] }, 'shout\n'),
      run(client, { argv: ['sh', '-c', 'kill -TERM $$'] }),
      run(client, { argv: ['sh', '-c', 'seq 1 20000 | wc -l'] }),
    ]);
    expect(results[0]).toMatchObject({ exitCode: 7, stdout: 'one\n', stderr: 'oops\n' });
    expect(results[1]).toMatchObject({ exitCode: 0, stdout: 'SHOUT\n' });
    expect(results[2]).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
    expect(results[3].stdout.trim()).toBe('20000');

    // Without the initramfs's work the agent configures the NIC itself (a kernel booted without banger's
    // initramfs): undo it, then run a second agent in test mode in the guest and look at what it left.
    const redo = await run(client, {
      argv: [
        'sh',
        '-c',
        [
          'ip addr flush dev eth0 && ip link set eth0 down && ip link set lo down',
          'echo banger.ip=10.0.2.15/24,10.0.2.2,eth0 > /tmp/cl && mkdir -p /tmp/r/etc',
          `${GUEST_AGENT_PATH} --listen-unix /tmp/a.sock --cmdline /tmp/cl /tmp/r 2>/tmp/agent2.log & pid=$!`,
          'for i in $(seq 300); do grep -q "network:" /tmp/agent2.log && break; sleep 0.1; done',
          'kill $pid; cat /tmp/agent2.log; ip -o -4 addr show dev eth0; ip route show default; ip -o link show lo',
        ].join('\n'),
      ],
    });
    expect(redo.stdout).toContain('banger-agent: network: configured');
    expect(redo.stdout).toMatch(/eth0\s+inet 10\.0\.2\.15\/24/);
    expect(redo.stdout).toContain('default via 10.0.2.2 dev eth0');
    expect(redo.stdout).toMatch(/lo: <[^>]*\bUP\b/);

    // The host may disconnect and come back: the agent sees EOF on the port, waits, and serves again.
    client.close();
    const again = await connect(vm);
    expect((await run(again, { argv: ['true'] })).exitCode).toBe(0);

    await again.shutdown();
    await vm.exited;
    expect(vm.child.exitCode).toBe(0);
  });

  it('stays PID 1 when asked (banger.init=none), reaps, and powers off itself', async () => {
    const vm = await boot('pid1', ['banger.init=none']);
    const client = await connect(vm);
    const health = await client.health();
    expect(health.pid1).toBe(true);
    expect(health.pid).toBe(1);
    expect(health.bootPhasesMs.shimStart).toBeGreaterThan(0);

    // An orphan (the background sleep outlives its shell) is reaped by PID 1: no zombie is left.
    await run(client, { argv: ['sh', '-c', '(sleep 0.2 &) ; exit 0'] });
    await run(client, { argv: ['sleep', '1'] });
    const zombies = await run(client, {
      argv: ['sh', '-c', "grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l"],
    });
    expect(zombies.stdout.trim()).toBe('0');

    const mounts = await run(client, { argv: ['cat', '/proc/mounts'] });
    for (const fs of [' /proc proc', ' /sys sysfs', ' /dev devtmpfs', ' /run tmpfs'])
      expect(mounts.stdout).toContain(fs);

    const tty = await run(client, { argv: ['sh', '-c', 'stty size'], tty: { rows: 33, cols: 101 } });
    expect(tty).toMatchObject({ exitCode: 0 });
    expect(tty.stdout).toContain('33 101');

    await client.writeFile('/root/hello.txt', 'from the host\n', { mode: 0o600, uid: 65534, gid: 65534 });
    expect((await client.readFile('/root/hello.txt', { maxBytes: 1024, timeoutMs: 30_000 })).toString()).toBe(
      'from the host\n',
    );
    const stat = await run(client, { argv: ['stat', '-c', '%a %u %g', '/root/hello.txt'] });
    expect(stat.stdout.trim()).toBe('600 65534 65534');

    // A malformed frame on the shared port: a stream-0 error, and the agent serves the next connection.
    client.close();
    const raw = createConnection({ path: vm.socketPath });
    const decoder = new FrameDecoder();
    const first = new Promise<Frame>((resolve) => {
      raw.on('data', (d: Buffer) => {
        const [f] = decoder.push(d);
        if (f) resolve(f);
      });
    });
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5]));
    expect(await first).toMatchObject({ type: FrameType.reply, stream: 0 });
    raw.destroy();
    const fresh = await connect(vm);
    expect((await run(fresh, { argv: ['echo', 'still here'] })).stdout).toBe('still here\n');

    await fresh.shutdown();
    await vm.exited;
    expect(vm.child.exitCode).toBe(0);
  });
});
