/**
 * The QEMU driver under TCG: boots the test kernel + banger initramfs into a busybox root whose init
 * answers on the agent's virtio-serial port, on microvm and on q35; checks the console log, the agent
 * channel, graceful stop, kill, and adopt() from another process after the starter exited. Nothing may be left behind.
 */
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/host/index.js';
import {
  createQemuVmm,
  type HostProbe,
  probeHost,
  processAlive,
  type Vmm,
  type VmmInstance,
  type VmmLaunchSpec,
  vmmHandlesSchema,
} from '../../src/vmm/index.js';
import {
  buildBusyboxRoot,
  busyboxLaunchSpec,
  GUEST_BOOT_MARKER,
  GUEST_CMDLINE,
  serialRequest,
  waitForConsole,
} from '../fixtures/busybox-guest.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';
import { createNetnsFixture } from '../fixtures/netns.js';

const runner = createRunner();
const here = dirname(fileURLToPath(import.meta.url));

async function probe(): Promise<string | undefined> {
  for (const tool of ['qemu-system-x86_64', 'mkfs.ext4', 'apt-get', 'dpkg-deb', 'depmod']) {
    const r = await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.exitCode !== 0) return `${tool} is not installed`;
  }
  if (!existsSync('/bin/busybox')) return '/bin/busybox (busybox-static) is not installed';
  const apt = await runner.run(['apt-cache', 'show', 'linux-image-cloud-amd64'], { allowFailure: true });
  if (apt.exitCode !== 0) return 'apt does not know linux-image-cloud-amd64 (no Debian sources)';
  return undefined;
}

const skipReason = await probe();
if (skipReason) console.warn(`vmm-qemu e2e skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('QEMU driver under TCG', () => {
  let kernel: TestKernel;
  let host: HostProbe;
  let vmm: Vmm;
  let work: string;
  let rootImg: string;
  const started: VmmInstance[] = [];
  const strayPids: Array<{ pid: number; startTime: number }> = [];

  beforeAll(async () => {
    kernel = await ensureTestKernel();
    host = await probeHost({
      config: { qemu_bin: 'qemu-system-x86_64', firecracker_bin: 'firecracker' },
      runner,
    });
    vmm = createQemuVmm({
      runner,
      qemuBin: host.qemu?.path ?? 'qemu-system-x86_64',
      vhostVsock: host.vhostVsock,
      tscKhz: host.tscKhz,
    });
    // Short: the QMP and agent sockets must fit AF_UNIX's 108 bytes.
    work = await mkdtemp(join(tmpdir(), 'bgr-vmm-'));
    rootImg = await buildBusyboxRoot(runner, work);
  });

  afterAll(async () => {
    for (const vm of started) if (vm.alive()) await vm.kill();
    for (const p of strayPids) if (processAlive(p.pid, p.startTime)) process.kill(p.pid, 'SIGKILL');
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Each VM gets its own root copy: QEMU write-locks its disks, so a leftover VM must not block the next. */
  async function spec(name: string): Promise<VmmLaunchSpec> {
    const root = join(work, `${name}.ext4`);
    await copyFile(rootImg, root);
    return busyboxLaunchSpec({ name, runDir: join(work, name), kernel, rootPath: root });
  }

  async function expectNothingLeft(vm: { pid: number; startTime: number }, runDir: string): Promise<void> {
    expect(processAlive(vm.pid, vm.startTime)).toBe(false);
    // Only the console log stays (for `vm logs`); the sockets went with the process.
    expect((await readdir(runDir)).sort()).toEqual(['console.log']);
  }

  it('boots, shows the boot on the console, answers on virtio-serial, and stops gracefully', async () => {
    const vm = await vmm.start(await spec('vm1'));
    started.push(vm);
    expect(vm.kind).toBe('qemu');
    expect(vm.agentEndpoint).toEqual({ kind: 'virtio-serial', socketPath: join(work, 'vm1', 'agent.sock') });
    // The process identity proves itself: QEMU's own executable and its whole -qmp argument, and the
    // pidfile the spawn wrapper wrote names the same pid and start time.
    expect(vm.identities).toContainEqual({
      kind: 'process',
      pid: vm.pid,
      startTime: vm.startTime,
      exe: expect.stringMatching(/qemu-system-/),
      arg: `unix:${join(work, 'vm1', 'qmp.sock')},server=on,wait=off`,
    });
    expect(readFileSync(join(work, 'vm1', 'vmm.pid'), 'utf8')).toBe(`${vm.pid} ${vm.startTime}\n`);
    expect(vmmHandlesSchema.parse(JSON.parse(JSON.stringify(vm.handles)))).toEqual(vm.handles);

    const log = await waitForConsole(vm.consoleLogPath, 'AGENT-PORT');
    expect(log).toContain('Linux version');
    expect(log).toContain(GUEST_BOOT_MARKER);
    expect(log).toContain('AGENT-PORT /dev/vport');
    if (vm.agentEndpoint.kind !== 'virtio-serial') throw new Error('expected virtio-serial');
    expect(await serialRequest(vm.agentEndpoint.socketPath, 'ping')).toBe('pong');

    const socketPath = vm.agentEndpoint.socketPath;
    await vm.stop({
      timeoutMs: 60_000,
      guestShutdown: async () => void (await serialRequest(socketPath, 'poweroff')),
    });
    // The guest powered itself off (exit code 0), it was not killed.
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    await expectNothingLeft(vm, join(work, 'vm1'));
  });

  it('boots on q35 (virtio-pci devices), answers on virtio-serial, stops gracefully', async () => {
    const vm = await vmm.start({ ...(await spec('vm7')), machine: 'q35' });
    started.push(vm);
    expect(vm.agentEndpoint).toEqual({ kind: 'virtio-serial', socketPath: join(work, 'vm7', 'agent.sock') });
    // The handles need no machine: adopt finds the VM by pid, start time and QMP socket alone.
    expect(vmmHandlesSchema.parse(JSON.parse(JSON.stringify(vm.handles)))).toEqual(vm.handles);

    const log = await waitForConsole(vm.consoleLogPath, 'AGENT-PORT');
    // The kernel names the machine it found: a PC, not microvm.
    expect(log).toMatch(/DMI: QEMU Standard PC \(Q35/);
    expect(log).toContain(GUEST_BOOT_MARKER);
    // The root disk (virtio-blk-pci) mounted and the agent port (virtio-serial-pci) is there.
    expect(log).toMatch(/BLOCK .*vda/);
    expect(log).toContain('AGENT-PORT /dev/vport');
    if (vm.agentEndpoint.kind !== 'virtio-serial') throw new Error('expected virtio-serial');
    expect(await serialRequest(vm.agentEndpoint.socketPath, 'ping')).toBe('pong');

    // A new driver reattaches to it as after a daemon restart.
    const adopted = await createQemuVmm({ runner, qemuBin: 'qemu-system-x86_64', vhostVsock: false }).adopt(
      vm.handles,
    );
    expect(adopted?.pid).toBe(vm.pid);

    const socketPath = vm.agentEndpoint.socketPath;
    await vm.stop({
      timeoutMs: 60_000,
      guestShutdown: async () => void (await serialRequest(socketPath, 'poweroff')),
    });
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    expect(await readFile(vm.consoleLogPath, 'utf8')).toContain('reboot: Power down');
    await expectNothingLeft(vm, join(work, 'vm7'));
  });

  it('stops a guest that ignores the power button by asking QEMU to quit', async () => {
    const vm = await vmm.start(await spec('vm2'));
    started.push(vm);
    await waitForConsole(vm.consoleLogPath, GUEST_BOOT_MARKER);
    // The busybox guest has no ACPI button driver, so only QMP quit can end it short of SIGKILL.
    await vm.stop({ timeoutMs: 1000 });
    expect((await vm.exited).signal).not.toBe('SIGKILL');
    await expectNothingLeft(vm, join(work, 'vm2'));
  });

  it('kill() ends the VM at once and adopt() then finds nothing', async () => {
    const vm = await vmm.start(await spec('vm3'));
    started.push(vm);
    await waitForConsole(vm.consoleLogPath, 'Linux version');
    await vm.kill();
    expect(await vm.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await expectNothingLeft(vm, join(work, 'vm3'));
    expect(
      await createQemuVmm({ runner, qemuBin: 'qemu-system-x86_64', vhostVsock: false }).adopt(vm.handles),
    ).toBeNull();
  });

  it('adopt() reattaches to a VM started by a process that has since exited', async () => {
    const require = createRequire(import.meta.url);
    const tsx = require.resolve('tsx');
    const starter = join(here, '..', 'fixtures', 'vmm-start-child.ts');
    const out = await runner.run([
      process.execPath,
      '--import',
      tsx,
      starter,
      JSON.stringify(await spec('vm4')),
    ]);
    const handles = vmmHandlesSchema.parse(JSON.parse(out.stdout.trim()));
    strayPids.push({ pid: handles.pid, startTime: handles.startTime });
    expect(processAlive(handles.pid, handles.startTime)).toBe(true);

    // A "restarted daemon": a new driver instance with nothing in memory but the handles.
    const fresh = createQemuVmm({
      runner,
      qemuBin: 'qemu-system-x86_64',
      vhostVsock: false,
      tscKhz: host.tscKhz,
    });
    const vm = await fresh.adopt(handles);
    expect(vm).not.toBeNull();
    if (vm?.agentEndpoint.kind !== 'virtio-serial') throw new Error('adopt failed');
    expect(vm.pid).toBe(handles.pid);
    await waitForConsole(vm.consoleLogPath, GUEST_BOOT_MARKER);
    expect(await serialRequest(vm.agentEndpoint.socketPath, 'ping')).toBe('pong');

    // A pid whose start time differs is someone else's process: never adopted.
    expect(await fresh.adopt({ ...handles, startTime: handles.startTime + 1 })).toBeNull();

    const socketPath = vm.agentEndpoint.socketPath;
    await vm.stop({
      timeoutMs: 60_000,
      guestShutdown: async () => void (await serialRequest(socketPath, 'poweroff')),
    });
    await expectNothingLeft(vm, join(work, 'vm4'));
    const log = await readFile(vm.consoleLogPath, 'utf8');
    expect(log).toContain('reboot: Power down');
  });

  // Taps and namespaces need root and /dev/net/tun.
  it.skipIf(process.getuid?.() !== 0 || !existsSync('/dev/net/tun'))(
    'plugs the guest NIC into a tap (with its MAC) inside a network namespace',
    async () => {
      const netns = createNetnsFixture(runner);
      try {
        const ns = await netns.createNetns('vmm');
        await runner.run(['ip', '-n', ns, 'tuntap', 'add', 'dev', 'tap-vmm0', 'mode', 'tap']);
        await runner.run(['ip', '-n', ns, 'addr', 'add', '172.31.9.1/24', 'dev', 'tap-vmm0']);
        await runner.run(['ip', '-n', ns, 'link', 'set', 'tap-vmm0', 'up']);
        const base = await spec('vm5');
        const vm = await vmm.start({
          ...base,
          cmdline: `${GUEST_CMDLINE} banger.ip=172.31.9.2/24,172.31.9.1,eth0`,
          net: { tap: 'tap-vmm0', mac: '02:fc:00:00:09:02' },
          netns: ns,
        });
        started.push(vm);
        const log = await waitForConsole(vm.consoleLogPath, 'AGENT-PORT');
        expect(log).toMatch(/LINK .*eth0.*link\/ether 02:fc:00:00:09:02/);
        // The guest kernel answers ICMP on its own: a reply proves the tap carries the guest's traffic.
        let answered = false;
        for (let i = 0; i < 30 && !answered; i++) {
          const r = await runner.run(['/bin/busybox', 'ping', '-c', '1', '-W', '1', '172.31.9.2'], {
            netns: ns,
            allowFailure: true,
          });
          answered = r.exitCode === 0;
        }
        expect(answered).toBe(true);
        await vm.kill();
        await expectNothingLeft(vm, join(work, 'vm5'));
      } finally {
        await netns.cleanup();
      }
      await netns.assertNoLeftovers();
    },
  );

  it('boots from a qcow2 overlay and hands extra disks to the guest in order', async () => {
    const base = await spec('vm6');
    const overlay = join(work, 'vm6.qcow2');
    await runner.run([
      'qemu-img',
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      'raw',
      '-b',
      base.rootDisk.path,
      overlay,
    ]);
    const extra = join(work, 'vm6-extra.raw');
    await runner.run(['truncate', '-s', '4M', extra]);
    const vm = await vmm.start({
      ...base,
      rootDisk: { path: overlay, format: 'qcow2' },
      extraDisks: [{ path: extra, format: 'raw', readOnly: true }],
    });
    started.push(vm);
    const log = await waitForConsole(vm.consoleLogPath, 'AGENT-PORT');
    expect(log).toContain(GUEST_BOOT_MARKER);
    expect(log).toMatch(/BLOCK .*vda vdb/);
    await vm.kill();
    await expectNothingLeft(vm, join(work, 'vm6'));
  });
});
