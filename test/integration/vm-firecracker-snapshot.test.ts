/**
 * Snapshots, forks and `vm run --from-snapshot` under Firecracker, through the built CLI and a real daemon,
 * on the fake `firecracker` (it answers by the API contract held against firecracker-api.yaml, records every
 * call, writes what /snapshot/create says and restores it at /snapshot/load). A restored fake starts a
 * fresh stand-in guest (the real banger-agent, fenced: its own UTS namespace, /etc copy and /run, and `ip`
 * and `date` that only log), so the identity script a fork sends runs for real without touching the host.
 * What a guest's memory holds cannot be shown without KVM; the QEMU e2e shows it under TCG.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBinaryPath } from '../../src/guest/index.js';
import { listLinks } from '../../src/host/index.js';
import { type BangerInstance, createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';
import { setupFirecrackerInstance } from '../fixtures/firecracker-fake/instance.js';
import { IDENTITY_LOG } from '../fixtures/firecracker-fake/stand-in-guest.js';
import { writeFakeFirecracker } from '../fixtures/firecracker-fake/wrapper.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();

async function probe(): Promise<string | undefined> {
  if (!existsSync(agentBinaryPath())) return `the agent is not built (${agentBinaryPath()}): npm run build`;
  if (!existsSync(join(REPO_ROOT, 'dist'))) return 'the CLI is not built: npm run build';
  if (process.getuid?.() !== 0) return "not root (taps, and the stand-in guest's namespaces, need it)";
  return undefined;
}
const skipReason = await probe();
if (skipReason) console.warn(`firecracker snapshot tests skipped: ${skipReason}`);

type Recorded = {
  method: string;
  path: string;
  body?: Record<string, unknown>;
  status: number;
  fault?: string;
};
type Json = Record<string, unknown>;
type ShownVm = {
  id: string;
  name: string;
  state: string;
  runtime: { guestIp: string; vmDir: string; identities: { kind: string; name?: string }[] };
};

describe.skipIf(skipReason !== undefined)(
  'Firecracker snapshots and forks (the fake, a stand-in guest)',
  () => {
    let inst: BangerInstance;
    let ns: string;
    let work: string;
    let env: Record<string, string>;
    const state = () => join(inst.home, 'state');
    const vmsDir = () => join(state(), 'vms');
    const callsFile = () => join(work, 'calls.jsonl');
    const cli = (args: string[]) => inst.cli(args, env);
    const calls = (): Recorded[] =>
      readFileSync(callsFile(), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Recorded);
    const show = async (name: string): Promise<ShownVm> => {
      const r = await cli(['vm', 'show', name, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as ShownVm;
    };
    const vmNames = async () =>
      (JSON.parse((await cli(['vm', 'list', '--json'])).stdout) as { name: string }[])
        .map((v) => v.name)
        .sort();
    const taps = async () =>
      (await listLinks(fx.runner, ns)).filter((l) => l.kind === 'tun').map((l) => l.name);
    /** The fake on PATH again, with fake-only flags (a refusing load, another version). */
    const fakeWith = (extra: string[]) =>
      writeFakeFirecracker(join(env.PATH!.split(':')[0]!, 'firecracker'), callsFile(), [
        '--guest-agent',
        agentBinaryPath(),
        ...extra,
      ]);

    beforeAll(async () => {
      ns = await fx.createNetns('fcs');
      work = await fx.tempDir();
      inst = createInstance();
      env = await setupFirecrackerInstance({
        fx,
        ns,
        inst,
        bridgeIp: '172.29.4.1',
        imageName: 'tiny',
        callsFile: callsFile(),
      });
      const r = await cli(['vm', 'create', '--name', 'src', '--image', 'tiny']);
      expect(r.exitCode, r.stderr).toBe(0);
    });

    afterAll(async () => {
      if (inst) {
        const list = await cli(['vm', 'list', '--json']).catch(() => undefined);
        for (const vm of JSON.parse(list?.stdout || '[]') as { id: string }[])
          await cli(['vm', 'delete', vm.id]);
        await cli(['daemon', 'stop']).catch(() => {});
        for (const p of await processesNaming(vmsDir())) process.kill(p.pid, 'SIGKILL');
        await inst.cleanup();
      }
      await fx.cleanup();
      await fx.assertNoLeftovers();
    });

    it('vm snapshot pauses, writes a Full snapshot (memory + vmstate) and the disks, content-addressed, and resumes', async () => {
      const before = calls().length;
      const r = await cli(['vm', 'snapshot', 'src', 'base']);
      expect(r.exitCode, r.stderr).toBe(0);
      const made = calls().slice(before);
      expect(made.filter((c) => c.status >= 400)).toEqual([]);
      const ops = made
        .filter((c) => c.method !== 'GET')
        .map((c) => `${c.method} ${c.path} ${c.body?.state ?? ''}`.trim());
      expect(ops).toEqual(['PATCH /vm Paused', 'PUT /snapshot/create', 'PATCH /vm Resumed']);
      const create = made.find((c) => c.path === '/snapshot/create')?.body as Json;
      expect(create.snapshot_type).toBe('Full');

      const snap = JSON.parse((await cli(['snapshot', 'show', 'base', '--json'])).stdout) as {
        dir: string;
        digest: string;
        vmm: { kind: string; version: string; machine: string };
        files: { name: string; role: string; sha256: string; sizeBytes: number }[];
      };
      expect(snap.vmm).toMatchObject({ kind: 'firecracker', version: '1.14.1', machine: 'microvm' });
      expect(snap.files.map((f) => f.role)).toEqual(['memory', 'vmstate', 'root-disk', 'work-disk']);
      // Written where the create call said, then published under the digest.
      expect(String(create.mem_file_path).endsWith('/memory')).toBe(true);
      expect(String(create.snapshot_path).endsWith('/vmstate')).toBe(true);
      expect(snap.dir).toBe(join(state(), 'snapshots', snap.digest));
      expect(readdirSync(snap.dir).sort()).toEqual(snap.files.map((f) => f.name).sort());
      // The fake writes the memory the VM was given (128 MiB as 128 KiB).
      expect(snap.files[0]?.sizeBytes).toBe(128 * 1024);
      expect((await cli(['snapshot', 'show', 'base', '--verify'])).exitCode).toBe(0);
      expect((await show('src')).state).toBe('running');
    });

    it('vm fork loads the snapshot into a fresh Firecracker with its own tap, vsock and disks, and the guest takes its identity', async () => {
      const before = calls().length;
      const r = await cli(['vm', 'fork', 'base', '--name', 'f1']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('f1');
      const f1 = await show('f1');
      const src = await show('src');
      expect(f1.state).toBe('running');
      const made = calls()
        .slice(before)
        .filter((c) => c.method !== 'GET');
      expect(made.filter((c) => c.status >= 400)).toEqual([]);
      // Only the logger and metrics before the load (a load is taken by a fresh process only); no boot-source,
      // drive, interface or vsock configured and no InstanceStart: the snapshot holds them.
      expect(made.map((c) => `${c.method} ${c.path}`)).toEqual([
        'PUT /logger',
        'PUT /metrics',
        'PUT /snapshot/load',
        'PATCH /drives/rootfs',
        'PATCH /drives/disk1',
        'PATCH /vm',
      ]);
      const snapDir = (
        JSON.parse((await cli(['snapshot', 'show', 'base', '--json'])).stdout) as { dir: string }
      ).dir;
      const tap = f1.runtime.identities.find((i) => i.kind === 'tap')?.name;
      const srcTap = src.runtime.identities.find((i) => i.kind === 'tap')?.name;
      expect(tap).toBeDefined();
      expect(tap).not.toBe(srcTap);
      expect(made[2]?.body).toEqual({
        snapshot_path: join(snapDir, 'vmstate'),
        mem_backend: { backend_type: 'File', backend_path: join(snapDir, 'memory') },
        resume_vm: false,
        network_overrides: [{ iface_id: 'eth0', host_dev_name: tap }],
        vsock_override: { uds_path: join(f1.runtime.vmDir, 'run', 'vsock.sock') },
      });
      expect(made[3]?.body).toEqual({
        drive_id: 'rootfs',
        path_on_host: join(f1.runtime.vmDir, 'rootfs.img'),
      });
      expect(made[4]?.body).toEqual({ drive_id: 'disk1', path_on_host: join(f1.runtime.vmDir, 'work.img') });
      expect(made[5]?.body).toEqual({ state: 'Resumed' });
      // The fork's disks are its own raw copies; the snapshot's files are unchanged.
      expect(existsSync(join(f1.runtime.vmDir, 'rootfs.img'))).toBe(true);
      expect((await cli(['snapshot', 'show', 'base', '--verify'])).exitCode).toBe(0);

      // The identity script ran in the restored guest: its hostname, and its address through `ip`.
      const host = await cli(['vm', 'exec', 'f1', '--', 'hostname']);
      expect(host.exitCode, host.stderr).toBe(0);
      expect(host.stdout.trim()).toBe('f1');
      const told = readFileSync(join(f1.runtime.vmDir, 'run', IDENTITY_LOG), 'utf8');
      expect(told).toContain(`ip addr add ${f1.runtime.guestIp}/`);
      expect(told).toMatch(/^date -u -s @\d+$/m);
      expect(f1.runtime.guestIp).not.toBe(src.runtime.guestIp);

      // In use: refused, naming the fork.
      const rm = await cli(['snapshot', 'rm', 'base']);
      expect(rm.exitCode).not.toBe(0);
      expect(rm.stderr).toContain('in use by VM f1');
    });

    it('vm run --from-snapshot runs a command in a restored VM and --rm leaves nothing of it', async () => {
      const tapsBefore = await taps();
      const r = await cli([
        'vm',
        'run',
        '--rm',
        '--from-snapshot',
        'base',
        '--',
        'sh',
        '-c',
        'hostname; exit 5',
      ]);
      expect(r.exitCode, r.stderr).toBe(5);
      expect(r.stdout.trim()).not.toBe('src');
      expect(await vmNames()).toEqual(['f1', 'src']);
      expect((await taps()).length).toBeLessThanOrEqual(tapsBefore.length + 1);
    });

    it('a load Firecracker refuses (400, fault_message) and another Firecracker version leave no VM, tap, process or file', async () => {
      const dirsBefore = readdirSync(vmsDir()).sort();
      const procsBefore = (await processesNaming(vmsDir())).length;
      const tapsBefore = (await taps()).length;
      try {
        await fakeWith(['--refuse-load', 'Cannot restore the microVM: bad snapshot']);
        const refused = await cli(['vm', 'fork', 'base', '--name', 'bad']);
        expect(refused.exitCode).not.toBe(0);
        expect(refused.stderr).toContain('Cannot restore the microVM: bad snapshot');
        const last = calls()
          .filter((c) => c.path === '/snapshot/load')
          .at(-1);
        expect(last?.status).toBe(400);

        await fakeWith(['--vmm-version', '1.15.0']);
        const other = await cli(['vm', 'fork', 'base', '--name', 'bad2']);
        expect(other.exitCode).not.toBe(0);
        expect(other.stderr).toContain('saved by Firecracker 1.14.1 and this host runs Firecracker 1.15.0');
      } finally {
        await fakeWith([]);
      }
      expect(await vmNames()).toEqual(['f1', 'src']);
      expect(readdirSync(vmsDir()).sort()).toEqual(dirsBefore);
      expect((await processesNaming(vmsDir())).length).toBe(procsBefore);
      expect((await taps()).length).toBeLessThanOrEqual(tapsBefore + 1);
    });

    it('vm fork VM snapshots a running VM first and forks it; snapshot rm works once the forks are gone', async () => {
      const r = await cli(['vm', 'fork', 'src', '--name', 'f2']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect((await cli(['vm', 'exec', 'f2', '--', 'hostname'])).stdout.trim()).toBe('f2');
      for (const name of ['f1', 'f2']) expect((await cli(['vm', 'delete', name])).exitCode).toBe(0);
      expect((await cli(['snapshot', 'rm', 'base'])).exitCode).toBe(0);
    });

    it("a snapshot whose VM is gone still forks: the load opens the fork's own disk links, never its source's", async () => {
      const taken = (JSON.parse((await cli(['snapshot', 'list', '--json'])).stdout) as { name: string }[])[0]
        ?.name;
      expect(taken).toMatch(/^src-[0-9a-f]{6}$/);
      expect((await cli(['vm', 'delete', 'src'])).exitCode).toBe(0);
      const before = calls().length;
      const r = await cli(['vm', 'fork', taken as string, '--name', 'orphan']);
      expect(r.exitCode, r.stderr).toBe(0);
      const orphan = await show('orphan');
      expect(
        calls()
          .slice(before)
          .filter((c) => c.status >= 400),
      ).toEqual([]);
      // The state file names the drives by their links; in the fork's run dir they lead to its own files.
      const run = join(orphan.runtime.vmDir, 'run');
      expect(readlinkSync(join(run, 'disk0'))).toBe(join(orphan.runtime.vmDir, 'rootfs.img'));
      expect(readlinkSync(join(run, 'disk1'))).toBe(join(orphan.runtime.vmDir, 'work.img'));
      expect((await cli(['vm', 'exec', 'orphan', '--', 'hostname'])).stdout.trim()).toBe('orphan');
      expect((await cli(['vm', 'delete', 'orphan'])).exitCode).toBe(0);
      expect((await cli(['snapshot', 'rm', taken as string])).exitCode).toBe(0);
      expect(await vmNames()).toEqual([]);
      expect(readdirSync(vmsDir())).toEqual([]);
      expect(await processesNaming(vmsDir())).toEqual([]);
      expect(readdirSync(join(state(), 'snapshots'))).toEqual([]);
    });
  },
);
