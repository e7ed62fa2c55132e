/**
 * The Firecracker driver against its API contract. The real binary needs KVM, so a fake `firecracker`
 * built on banger's description of the API (src/vmm/firecracker/contract.ts, held against Firecracker's
 * swagger file by test/unit/vmm/firecracker-contract.test.ts) stands in: it refuses any request the
 * contract would not accept and records the order of calls. The driver's whole boot and stop sequence must pass it.
 */
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessPrivOps, createRunner, teardownAll } from '../../src/host/index.js';
import { BangerError } from '../../src/model/errors.js';
import {
  CONSOLE_LOG_MAX_BYTES,
  createFirecrackerVmm,
  processAlive,
  type VmmInstance,
  type VmmLaunchSpec,
  vmmHandlesSchema,
} from '../../src/vmm/index.js';
import { writeFakeFirecracker } from '../fixtures/firecracker-fake/wrapper.js';

const runner = createRunner();

type Recorded = {
  method: string;
  path: string;
  body?: Record<string, unknown>;
  status: number;
  fault?: string;
};

describe('Firecracker driver against the API contract', () => {
  let work: string;
  let kernel: string;
  const started: VmmInstance[] = [];

  /** A wrapper script that runs the fake as if it were the firecracker binary. */
  async function fakeBinary(name: string, extra: string[] = []): Promise<{ bin: string; record: string }> {
    const record = join(work, `${name}.calls.jsonl`);
    const bin = join(work, `${name}-firecracker`);
    await writeFakeFirecracker(bin, record, extra);
    return { bin, record };
  }

  /**
   * A stand-in jailer: resolves the chroot as the real one does and execs "firecracker" in place with
   * `--id <id>` (as the real jailer passes it on: the argument that proves the pid is this VM's) and
   * --chroot, keeping the in-chroot --api-sock argument.
   */
  async function fakeJailer(): Promise<string> {
    const jailer = join(work, 'fake-jailer');
    await writeFile(
      jailer,
      [
        '#!/bin/sh',
        'while [ $# -gt 0 ]; do case "$1" in',
        '  --id) id=$2; shift 2 ;; --exec-file) exe=$2; shift 2 ;; --chroot-base-dir) base=$2; shift 2 ;;',
        '  --uid|--gid|--netns) shift 2 ;; --) shift; break ;; *) shift ;;',
        'esac; done',
        'exec "$exe" --id "$id" --chroot "$base/$(basename "$exe")/$id/root" "$@"',
        '',
      ].join('\n'),
    );
    await chmod(jailer, 0o755);
    return jailer;
  }

  async function calls(record: string): Promise<Recorded[]> {
    const text = await readFile(record, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Recorded);
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'bgr-fc-'));
    kernel = join(work, 'vmlinux');
    // Enough of an ELF header for the preflight; the fake never runs it.
    await writeFile(kernel, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(60)]));
    await writeFile(join(work, 'root.ext4'), Buffer.alloc(1024));
    await writeFile(join(work, 'work.ext4'), Buffer.alloc(1024));
    await writeFile(join(work, 'initrd.img'), Buffer.alloc(16));
  });

  afterEach(async () => {
    for (const vm of started.splice(0)) if (vm.alive()) await vm.kill();
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  const spec = (name: string, over: Partial<VmmLaunchSpec> = {}): VmmLaunchSpec => ({
    name,
    runDir: join(work, name),
    kernelPath: kernel,
    initrdPath: join(work, 'initrd.img'),
    cmdline: 'root=/dev/vda rw reboot=k panic=1 pci=off',
    rootDisk: { path: join(work, 'root.ext4'), format: 'raw' },
    extraDisks: [{ path: join(work, 'work.ext4'), format: 'raw' }],
    vcpus: 2,
    memoryMiB: 512,
    net: { tap: 'tap-fc-0001', mac: '02:fc:00:00:00:01' },
    agent: 'firecracker-vsock',
    cid: 3,
    accel: 'kvm',
    ...over,
  });

  it('boots through the API in the documented order, reaches the vsock, and stops with Ctrl-Alt-Del', async () => {
    const { bin, record } = await fakeBinary('boot');
    const vmm = createFirecrackerVmm({ runner, firecrackerBin: bin });
    const vm = await vmm.start(spec('fc1'));
    started.push(vm);

    const seen = await calls(record);
    expect(seen.filter((c) => c.status >= 400)).toEqual([]);
    expect(seen.map((c) => `${c.method} ${c.path}`)).toEqual([
      ...seen.filter((c) => c.method === 'GET').map(() => 'GET /'),
      'PUT /logger',
      'PUT /metrics',
      'PUT /machine-config',
      'PUT /boot-source',
      'PUT /drives/rootfs',
      'PUT /drives/disk1',
      'PUT /network-interfaces/eth0',
      'PUT /vsock',
      'PUT /actions',
    ]);
    expect(seen.find((c) => c.path === '/boot-source')?.body).toEqual({
      kernel_image_path: kernel,
      boot_args: 'console=ttyS0 root=/dev/vda rw reboot=k panic=1 pci=off',
      initrd_path: join(work, 'initrd.img'),
    });
    // Disks by their links in the run dir, Firecracker's working directory (drive-links.ts).
    expect(seen.find((c) => c.path === '/drives/rootfs')?.body).toMatchObject({
      path_on_host: 'disk0',
      is_root_device: true,
      is_read_only: false,
    });
    expect(readlinkSync(join(work, 'fc1', 'disk0'))).toBe(join(work, 'root.ext4'));
    expect(readlinkSync(join(work, 'fc1', 'disk1'))).toBe(join(work, 'work.ext4'));
    expect(seen.at(-1)?.body).toEqual({ action_type: 'InstanceStart' });

    expect(vm.agentEndpoint).toEqual({
      kind: 'firecracker-vsock',
      udsPath: join(work, 'fc1', 'vsock.sock'),
      port: 1024,
    });
    expect(vmmHandlesSchema.parse(JSON.parse(JSON.stringify(vm.handles)))).toEqual(vm.handles);
    if (vm.agentEndpoint.kind !== 'firecracker-vsock') throw new Error('expected firecracker-vsock');
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(vm.agentEndpoint.kind === 'firecracker-vsock' ? vm.agentEndpoint.udsPath : '');
      s.on('error', reject);
      s.on('connect', () => s.write('CONNECT 1024\n'));
      s.on('data', (d) => {
        resolve(d.toString('utf8'));
        s.destroy();
      });
    });
    expect(answer).toMatch(/^OK \d+\n$/);

    await vm.stop({ timeoutMs: 30_000 });
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    expect((await calls(record)).at(-1)?.body).toEqual({ action_type: 'SendCtrlAltDel' });
    expect(await readFile(vm.consoleLogPath, 'utf8')).toContain('Linux version');
    expect(processAlive(vm.pid, vm.startTime)).toBe(false);
    expect((await readdir(join(work, 'fc1'))).sort()).toEqual([
      'console.log',
      'firecracker.log',
      'metrics.json',
    ]);
  });

  it('a guest flooding its console: console.log rotates at the cap, the last output is kept, no keeper is left', async () => {
    const flood = 3 * CONSOLE_LOG_MAX_BYTES;
    const { bin } = await fakeBinary('flood', ['--console-flood', String(flood)]);
    const vm = await createFirecrackerVmm({ runner, firecrackerBin: bin }).start(spec('fc3'));
    started.push(vm);
    const log = vm.consoleLogPath;
    await waitFor(async () => (await readFile(log, 'utf8').catch(() => '')).endsWith('flood end\n'), 60_000);
    const sizes = (await readdir(dirname(log))).filter((f) => f.startsWith('console.log')).sort();
    expect(sizes).toEqual(['console.log', 'console.log.1']);
    const older = await readFile(`${log}.1`, 'utf8');
    const newer = await readFile(log, 'utf8');
    expect(Buffer.byteLength(older)).toBe(CONSOLE_LOG_MAX_BYTES);
    expect(Buffer.byteLength(newer)).toBeLessThanOrEqual(CONSOLE_LOG_MAX_BYTES);
    // The two files are the end of the output, in order, with nothing lost at the seam.
    const numbers = (older + newer)
      .split('\n')
      .slice(1, -2)
      .map((l) => Number(l.replace('flood ', '')));
    expect(numbers.length).toBeGreaterThan(100_000);
    expect(numbers.every((v, i) => i === 0 || v === (numbers[i - 1] as number) + 1)).toBe(true);
    await vm.kill();
    // The keeper ends with the VMM (the pipe's last writer): nothing keeps the run dir as its cwd.
    await waitFor(async () => (await cwdUsers(dirname(log))).length === 0, 10_000);
  });

  it('adopt() finds a running Firecracker from its handles, and nothing once it is killed', async () => {
    const { bin } = await fakeBinary('adopt');
    const vm = await createFirecrackerVmm({ runner, firecrackerBin: bin }).start(spec('fc2'));
    started.push(vm);
    const fresh = createFirecrackerVmm({ runner, firecrackerBin: bin });
    const adopted = await fresh.adopt(JSON.parse(JSON.stringify(vm.handles)));
    expect(adopted?.pid).toBe(vm.pid);
    await adopted?.kill();
    expect(processAlive(vm.pid, vm.startTime)).toBe(false);
    expect(await fresh.adopt(vm.handles)).toBeNull();
  });

  it('the fake is strict: unknown fields, wrong types and out-of-order actions are refused', async () => {
    const { bin, record } = await fakeBinary('strict');
    const sock = join(work, 'strict.sock');
    const child = runner.spawn([bin, '--api-sock', sock], { logPath: join(work, 'strict.log') });
    try {
      // The fake (node + tsx) may take a while to listen on a loaded host: retry until it answers.
      const put = async (path: string, body: unknown) => {
        for (let i = 0; ; i++) {
          try {
            return (await fetchUnix(sock, 'PUT', path, body)).status;
          } catch (err) {
            if (i > 1200) throw err;
            await new Promise((r) => setTimeout(r, 25));
          }
        }
      };
      expect(await put('/machine-config', { vcpu_count: 2, mem_size_mib: 512, turbo: true })).toBe(400);
      expect(await put('/machine-config', { vcpu_count: '2', mem_size_mib: 512 })).toBe(400);
      expect(await put('/actions', { action_type: 'InstanceStart' })).toBe(400);
      expect(await put('/drives/a', { drive_id: 'b', is_root_device: true, path_on_host: kernel })).toBe(400);
      expect(await put('/machine-config', { vcpu_count: 2, mem_size_mib: 512 })).toBe(204);
      const faults = (await calls(record)).map((c) => c.fault);
      expect(faults[0]).toContain('body.turbo: unknown field');
      expect(faults[1]).toContain('body.vcpu_count: expected an integer');
      expect(faults[2]).toContain('without kernel configuration');
      expect(faults[3]).toContain('drive_id in path and body differ');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('the fake takes /snapshot/load only on a fresh process and with exactly one memory source (the yaml)', async () => {
    const { bin, record } = await fakeBinary('load');
    const sock = join(work, 'load.sock');
    const child = runner.spawn([bin, '--api-sock', sock], { logPath: join(work, 'load.log') });
    try {
      const put = async (path: string, body: unknown) => {
        for (let i = 0; ; i++) {
          try {
            return (await fetchUnix(sock, 'PUT', path, body)).status;
          } catch (err) {
            if (i > 1200) throw err;
            await new Promise((r) => setTimeout(r, 25));
          }
        }
      };
      const load = { snapshot_path: join(work, 'no-vmstate'), resume_vm: false };
      const mem = { backend_type: 'File', backend_path: join(work, 'no-memory') };
      expect(
        await put('/snapshot/load', { ...load, mem_backend: mem, mem_file_path: mem.backend_path }),
      ).toBe(400);
      expect(await put('/snapshot/load', load)).toBe(400);
      expect(await put('/snapshot/load', { ...load, mem_backend: mem })).toBe(400);
      expect(await put('/logger', { log_path: join(work, 'root.ext4') })).toBe(204);
      expect(await put('/machine-config', { vcpu_count: 2, mem_size_mib: 512 })).toBe(204);
      expect(await put('/snapshot/load', { ...load, mem_backend: mem })).toBe(400);
      const faults = (await calls(record)).map((c) => c.fault);
      expect(faults[0]).toContain('exactly one of mem_file_path and mem_backend');
      expect(faults[1]).toContain('exactly one of mem_file_path and mem_backend');
      // A fresh process (nothing configured yet) gets as far as the files.
      expect(faults[2]).toContain('no-vmstate: No such file');
      expect(faults[5]).toContain('not allowed after configuring boot-specific resources');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('refuses what Firecracker cannot boot, with the reason, before starting anything', async () => {
    const { bin, record } = await fakeBinary('refuse');
    const vmm = createFirecrackerVmm({ runner, firecrackerBin: bin });
    const bzImage = join(work, 'bzImage');
    await writeFile(bzImage, Buffer.from('MZ not an ELF'));
    const cases: Array<[Partial<VmmLaunchSpec>, RegExp]> = [
      [{ kernelPath: bzImage }, /uncompressed ELF vmlinux/],
      [
        {
          kernelFeatures: {
            configKnown: true,
            virtioMmio: 'builtin',
            virtioPci: 'builtin',
            virtioMmioCmdlineDevices: false,
          },
        },
        /VIRTIO_MMIO_CMDLINE_DEVICES/,
      ],
      [{ rootDisk: { path: join(work, 'root.ext4'), format: 'qcow2' } }, /only takes raw disks/],
      [{ vcpus: 3 }, /1 or an even number of vCPUs/],
      [{ accel: 'tcg' }, /QEMU-only/],
    ];
    for (const [over, message] of cases) {
      const err = await vmm.start(spec('refused', over)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BangerError);
      expect((err as BangerError).code).toBe('bad_request');
      expect((err as BangerError).message).toMatch(message);
    }
    expect(await calls(record)).toEqual([]);
  });

  it('refuses a Firecracker older than the oldest supported API, and leaves no process', async () => {
    const { bin, record } = await fakeBinary('old', ['--vmm-version', '1.4.1']);
    const err = await createFirecrackerVmm({ runner, firecrackerBin: bin })
      .start(spec('fc-old'))
      .catch((e: unknown) => e as BangerError);
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).message).toMatch(/1\.4\.1 is older than 1\.5\.0/);
    expect((await calls(record)).map((c) => c.path)).not.toContain('/actions');
    expect(existsSync(join(work, 'fc-old', 'firecracker.sock'))).toBe(false);
  });

  it('reports the API fault when a request is refused, and kills the half-configured VMM', async () => {
    const { bin } = await fakeBinary('fault');
    const err = await createFirecrackerVmm({ runner, firecrackerBin: bin })
      .start(spec('fc-fault', { initrdPath: join(work, 'missing.img') }))
      .catch((e: unknown) => e as BangerError);
    expect(err).toBeInstanceOf(BangerError);
    expect((err as BangerError).code).toBe('operation_failed');
    expect((err as BangerError).message).toMatch(
      /boot-source answered 400: initrd_path .*missing\.img: No such file/,
    );
    expect(existsSync(join(work, 'fc-fault', 'firecracker.sock'))).toBe(false);
    // A missing disk is refused before the spawn, naming its path (Firecracker opens it through a link).
    const disk = await createFirecrackerVmm({ runner, firecrackerBin: bin })
      .start(spec('fc-fault2', { extraDisks: [{ path: join(work, 'missing.ext4'), format: 'raw' }] }))
      .catch((e: unknown) => e as BangerError);
    expect((disk as BangerError).code).toBe('bad_request');
    expect((disk as BangerError).message).toBe(`disk ${join(work, 'missing.ext4')} does not exist`);
    expect(existsSync(join(work, 'fc-fault2', 'firecracker.sock'))).toBe(false);
  });

  it('under the jailer: stages files into the chroot, speaks chroot paths, and reaches the API by a short symlink', async () => {
    const { bin, record } = await fakeBinary('jail');
    const jailer = await fakeJailer();
    const chrootBase = join(work, 'jail');
    const vmm = createFirecrackerVmm({
      runner,
      firecrackerBin: bin,
      jailer: { jailerBin: jailer, chrootBase, uid: 0, gid: 0 },
      shortSocketDir: work,
    });
    const vm = await vmm.start(spec('fcj'));
    started.push(vm);
    const seen = await calls(record);
    expect(seen.filter((c) => c.status >= 400)).toEqual([]);
    expect(seen.find((c) => c.path === '/boot-source')?.body).toMatchObject({
      kernel_image_path: '/kernel',
      initrd_path: '/initrd',
    });
    expect(seen.find((c) => c.path === '/drives/rootfs')?.body).toMatchObject({ path_on_host: '/disk0' });
    expect(vm.handles.controlSocket).toBe(join(work, 'fc-fcj.sock'));
    const root = join(chrootBase, 'jail-firecracker', 'fcj', 'root');
    expect(vm.agentEndpoint).toEqual({
      kind: 'firecracker-vsock',
      udsPath: join(root, 'vsock.sock'),
      port: 1024,
    });
    expect(await createFirecrackerVmm({ runner, firecrackerBin: bin }).adopt(vm.handles)).not.toBeNull();
    // Its argv names no run dir, so the pid is recorded where the run dir is: the spawn wrapper wrote it
    // before the jailer ran, and the identity planned before the spawn finds and proves it from there.
    const pidFile = join(work, 'fcj', 'vmm.pid');
    expect(readFileSync(pidFile, 'utf8')).toBe(`${vm.pid} ${vm.startTime}\n`);
    expect(vmm.plan(spec('fcj'))).toEqual({ kind: 'pidfile', path: pidFile, arg: 'fcj' });
    expect(vm.identities).toEqual([
      {
        kind: 'process',
        pid: vm.pid,
        startTime: vm.startTime,
        exe: realpathSync(process.execPath),
        arg: 'fcj',
      },
    ]);

    await vm.stop({ timeoutMs: 30_000 });
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
    // The chroot and the symlink went with the VM; the staged hard links never touched the originals.
    expect(existsSync(join(chrootBase, 'jail-firecracker', 'fcj'))).toBe(false);
    expect(existsSync(join(work, 'fc-fcj.sock'))).toBe(false);
    expect(existsSync(join(work, 'root.ext4'))).toBe(true);
  });

  it('under the jailer, a Firecracker whose daemon died right after the spawn is found by its pidfile and killed', async () => {
    const { bin } = await fakeBinary('jail-crash');
    const jailer = await fakeJailer();
    const vmm = createFirecrackerVmm({
      runner,
      firecrackerBin: bin,
      jailer: { jailerBin: jailer, chrootBase: join(work, 'jail'), uid: 0, gid: 0 },
      shortSocketDir: work,
    });
    const s = spec('fcx');
    const planned = vmm.plan(s); // what the VM service records before the spawn
    const vm = await vmm.start(s);
    started.push(vm);
    // The daemon "dies" here: nothing but the planned identity was recorded. Its teardown alone finds the
    // jailed Firecracker, whose argv does not name the run dir, and kills it.
    const priv = createInProcessPrivOps({ runner, stateDir: work });
    await teardownAll({ priv, vmDir: work }, [planned]);
    expect(await vm.exited).toMatchObject({ signal: 'SIGKILL' });
  });
});

/** A bare HTTP request over a unix socket, independent of the driver's client. */
function fetchUnix(
  socketPath: string,
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number }> {
  return import('node:http').then(
    ({ request }) =>
      new Promise((resolve, reject) => {
        const payload = Buffer.from(JSON.stringify(body));
        const req = request(
          {
            socketPath,
            method,
            path,
            headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      }),
  );
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Processes whose working directory is dir. */
async function cwdUsers(dir: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  const users: number[] = [];
  for (const pid of pids)
    if ((await readlink(`/proc/${pid}/cwd`).catch(() => '')) === dir) users.push(Number(pid));
  return users;
}
