/**
 * One contract for every VMM backend, through the path users take: the built CLI, a real daemon, the VM
 * service. The same table of cases runs against
 *   - QEMU under TCG booting a real guest (the test kernel + banger's initramfs, a busybox userland root with
 *     the agent and its init shim; the agent over virtio-serial, or vhost-vsock where the host has it), and
 *   - Firecracker: the fake `firecracker` on PATH (it answers by src/vmm/firecracker/contract.ts, held
 *     against Firecracker's swagger file), whose guest is the real banger-agent run on the host in its own
 *     mount and network namespaces, reached over the hybrid vsock socket (`CONNECT 1024`).
 * A case that only one backend can hold says so in the table (`only`, with the reason); nothing is skipped.
 * Bridge, taps and leases live in a namespace this file creates; nothing may be left behind.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBinaryPath } from '../../src/guest/index.js';
import { listLinks } from '../../src/host/index.js';
import {
  type BangerInstance,
  createInstance,
  processAlive,
  REPO_ROOT,
  waitUntil,
} from '../fixtures/banger-instance.js';
import { setupFirecrackerInstance } from '../fixtures/firecracker-fake/instance.js';
import { buildGuestRoot, registerImage, writeInstanceConfig } from '../fixtures/guest-root.js';
import { ensureTestKernel } from '../fixtures/kernel.js';
import { createNetnsFixture, type NetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

type BackendName = 'qemu' | 'firecracker';
type Json = Record<string, unknown>;
type CliResult = { stdout: string; stderr: string; exitCode: number };

/** What a case works with: one banger instance on one backend, and a VM named `c1` made by the first case. */
interface Ctx {
  backend: BackendName;
  inst: BangerInstance;
  ns: string;
  fx: NetnsFixture;
  cli(args: string[], input?: string): Promise<CliResult>;
  show(): Promise<Json>;
  vmsDir: string;
  /** The processes the VM's VMM runs as (argv naming the VMs dir): QEMU, or the fake and its stand-in guest. */
  vmmProcesses(): Promise<number[]>;
  leases(file: 'ip-leases.json' | 'cid-leases.json'): Record<string, string>;
  handles(vmId: string): Json;
}

interface Case {
  name: string;
  /** A case one backend cannot hold, with the reason; absent means both. */
  only?: { backend: BackendName; why: string };
  run(ctx: Ctx): Promise<void>;
}

const VM = 'c1';
const LISTEN_PORT = 4567;

/** The agent transport each backend must have chosen on this host. */
const expectedTransport = (backend: BackendName): string =>
  backend === 'firecracker'
    ? 'firecracker-vsock'
    : existsSync('/dev/vhost-vsock')
      ? 'vsock'
      : 'virtio-serial';

const CASES: Case[] = [
  {
    name: 'create: the VM runs with an address on the bridge, its identities recorded, its boot on the console, reached over the right transport',
    async run(c) {
      const r = await c.cli(['vm', 'create', '--name', VM, '--image', 'guest']);
      expect(r.exitCode, r.stderr).toBe(0);
      const vm = await c.show();
      expect(vm.state).toBe('running');
      const runtime = vm.runtime as { guestIp: string; identities: { kind: string }[] };
      expect(runtime.guestIp).toMatch(/^172\.28\.0\.\d+$/);
      const kinds = runtime.identities.map((i) => i.kind);
      for (const kind of ['ip', 'cid', 'tap', 'process']) expect(kinds).toContain(kind);
      const handles = c.handles(vm.id as string);
      expect((handles.agentEndpoint as { kind: string }).kind).toBe(expectedTransport(c.backend));
      expect(c.leases('ip-leases.json')[runtime.guestIp]).toBe(vm.id);
      expect(Object.values(c.leases('cid-leases.json'))).toEqual([vm.id]);
      expect((await c.vmmProcesses()).length).toBeGreaterThan(0);
      expect((await c.cli(['vm', 'logs', VM])).stdout).toContain('Linux version');
    },
  },
  {
    name: "exec: a command's stdout, stderr and exit code come back apart; stdin reaches it",
    async run(c) {
      const r = await c.cli(['vm', 'exec', VM, '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      expect(r).toEqual({ stdout: 'out', stderr: 'err', exitCode: 3 });
      const shout = await c.cli(['vm', 'exec', VM, '--', 'tr', 'a-z', 'A-Z'], 'shout\n');
      expect(shout).toMatchObject({ stdout: 'SHOUT', exitCode: 0 });
      const killed = await c.cli(['vm', 'exec', VM, '--', 'sh', '-c', 'kill -TERM $$']);
      expect(killed.exitCode).toBe(128 + 15);
    },
  },
  {
    name: 'ports: a port the guest listens on is listed by the agent',
    async run(c) {
      // The listener's pid goes to /root (the guest's own: private even for the stand-in guest) so the case
      // ends it; the stand-in's processes are host processes, and none may outlive the test.
      const listen = `setsid sh -c 'echo $$ > /root/listener.pid; exec busybox nc -l -p ${LISTEN_PORT}' </dev/null >/dev/null 2>&1 &`;
      expect((await c.cli(['vm', 'exec', VM, '--', 'sh', '-c', listen])).exitCode).toBe(0);
      let ports: { port: number; protocol: string }[] = [];
      try {
        await waitUntil(async () => {
          const r = await c.cli(['vm', 'ports', VM, '--json']);
          expect(r.exitCode, r.stderr).toBe(0);
          ports = (JSON.parse(r.stdout) as { ports: typeof ports }).ports;
          return ports.some((p) => p.port === LISTEN_PORT);
        }, 60_000);
      } finally {
        const stop = 'kill $(cat /root/listener.pid) 2>/dev/null; rm -f /root/listener.pid';
        await c.cli(['vm', 'exec', VM, '--', 'sh', '-c', stop]);
      }
      expect(ports).toContainEqual(expect.objectContaining({ port: LISTEN_PORT, protocol: 'tcp' }));
    },
  },
  {
    name: 'pause and resume: the VM lists as paused, its VMM says so, exec is refused naming resume; resume answers again',
    async run(c) {
      expect((await c.cli(['vm', 'pause', VM])).stdout).toBe(VM);
      const listed = JSON.parse((await c.cli(['vm', 'list', '--json'])).stdout) as {
        name: string;
        state: string;
      }[];
      expect(listed.find((v) => v.name === VM)?.state).toBe('paused');
      expect((await c.cli(['vm', 'list'])).stdout).toMatch(new RegExp(`${VM}\\s.*paused`));
      const refused = await c.cli(['vm', 'exec', VM, '--', 'true']);
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr).toContain(`VM ${VM} is paused`);
      expect(refused.stderr).toContain(`banger vm resume ${VM}`);
      // The VMM's own word, through a daemon that has to ask it: SIGKILL the daemon, the next one adopts.
      const pid = c.inst.daemonPid() as number;
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => !processAlive(pid));
      expect((await c.show()).state).toBe('paused');
      expect((await c.cli(['vm', 'resume', VM])).exitCode).toBe(0);
      expect((await c.show()).state).toBe('running');
      expect((await c.cli(['vm', 'exec', VM, '--', 'echo', 'awake'])).stdout).toBe('awake');
    },
  },
  {
    name: "pause stops the guest's clock and a counter driven by it; resume continues them (same process)",
    only: {
      backend: 'qemu',
      why: "the fake's stand-in guest lives on the host's clock: pausing it stops its agent's answers, not time",
    },
    async run(c) {
      // The counter is replaced by a rename, never truncated in place: a read between the truncation and
      // the write would see an empty file and shift the lines parsed below.
      const loop = `setsid sh -c 'echo $$ > /root/counter.pid; i=0; while :; do i=$((i+1)); echo $i > /root/counter.tmp; mv /root/counter.tmp /root/counter; sleep 0.1; done' </dev/null >/dev/null 2>&1 &`;
      expect((await c.cli(['vm', 'exec', VM, '--', 'sh', '-c', loop])).exitCode).toBe(0);
      const read = async () => {
        const r = await c.cli([
          'vm',
          'exec',
          VM,
          '--',
          'sh',
          '-c',
          'cat /root/counter.pid /root/counter /proc/uptime',
        ]);
        const [pid, count, uptime] = r.stdout.split('\n');
        return { pid: Number(pid), count: Number(count), uptime: Number(uptime?.split(' ')[0]) };
      };
      await waitUntil(async () => (await read()).count > 0, 60_000);
      const t0 = Date.now();
      const before = await read();
      expect((await c.cli(['vm', 'pause', VM])).exitCode).toBe(0);
      const pausedAt = Date.now();
      await new Promise((r) => setTimeout(r, 8000));
      const pausedFor = Date.now() - pausedAt;
      expect((await c.cli(['vm', 'resume', VM])).exitCode).toBe(0);
      const after = await read();
      const hostSeconds = (Date.now() - t0) / 1000;
      // Causal bounds, not timings: the guest was frozen for at least pausedFor, so its clock (and the
      // counter, one step per 0.1 s of it at most) advanced by at most the host time less that.
      const guestSeconds = after.uptime - before.uptime;
      expect(guestSeconds).toBeLessThan(hostSeconds - pausedFor / 1000 + 0.05);
      expect(after.count - before.count).toBeLessThanOrEqual(Math.ceil(guestSeconds / 0.1) + 1);
      // The same process goes on counting.
      expect(after.pid).toBe(before.pid);
      await waitUntil(async () => (await read()).count > after.count, 60_000);
      await c.cli(['vm', 'exec', VM, '--', 'sh', '-c', 'kill $(cat /root/counter.pid)']);
    },
  },
  {
    name: 'snapshot: memory, device state and disks saved with digests, the VM runs on (same processes); show --verify; a changed file is refused; rm leaves nothing',
    async run(c) {
      const before = await c.vmmProcesses();
      const pidBefore = (
        await c.cli(['vm', 'exec', VM, '--', 'sh', '-c', 'echo $$ > /root/marker; cat /root/marker'])
      ).stdout;
      const r = await c.cli(['vm', 'snapshot', VM, 'snap1']);
      expect(r, r.stderr).toMatchObject({ exitCode: 0, stdout: 'snap1' });
      expect((await c.show()).state).toBe('running');
      expect((await c.vmmProcesses()).sort()).toEqual(before.sort());
      expect((await c.cli(['vm', 'exec', VM, '--', 'cat', '/root/marker'])).stdout).toBe(pidBefore);

      const list = JSON.parse((await c.cli(['snapshot', 'list', '--json'])).stdout) as Json[];
      expect(list.map((s) => s.name)).toEqual(['snap1']);
      const snap = list[0] as {
        dir: string;
        digest: string;
        sizeBytes: number;
        vmm: { kind: string; version: string };
        files: { name: string; role: string; sizeBytes: number; sha256: string }[];
      };
      expect(snap.vmm.kind).toBe(c.backend);
      expect(snap.vmm.version).toMatch(/^\d+\.\d+/);
      const roles = snap.files.map((f) => f.role);
      expect(roles).toEqual(
        c.backend === 'qemu'
          ? ['memory', 'root-disk', 'work-disk']
          : ['memory', 'vmstate', 'root-disk', 'work-disk'],
      );
      // Content-addressed: the directory is named by the digest, under the state dir's snapshots/.
      expect(snap.dir).toBe(join(c.inst.home, 'state', 'snapshots', snap.digest));
      for (const f of snap.files) {
        const bytes = readFileSync(join(snap.dir, f.name));
        expect(bytes.length).toBe(f.sizeBytes);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(f.sha256);
      }
      expect(snap.sizeBytes).toBe(snap.files.reduce((n, f) => n + f.sizeBytes, 0));
      const memory = snap.files.find((f) => f.role === 'memory') as { sizeBytes: number };
      expect(memory.sizeBytes).toBeGreaterThan(64 * 1024);
      expect((await c.cli(['snapshot', 'show', 'snap1', '--verify'])).exitCode).toBe(0);
      expect((await c.cli(['snapshot', 'list'])).stdout).toMatch(/snap1\s+c1\s/);

      const taken = await c.cli(['vm', 'snapshot', VM, 'snap1']);
      expect(taken.exitCode).not.toBe(0);
      expect(taken.stderr).toContain('snapshot "snap1" already exists');
      const bad = await c.cli(['vm', 'snapshot', VM, '../x']);
      expect(bad.exitCode).not.toBe(0);
      expect(bad.stderr).toContain('invalid snapshot name');

      // One byte changed in the memory file: refused, naming the file.
      const memPath = join(snap.dir, 'memory');
      const mem = readFileSync(memPath);
      mem[mem.length - 1] = (mem[mem.length - 1] as number) ^ 0xff;
      writeFileSync(memPath, mem);
      const tampered = await c.cli(['snapshot', 'show', 'snap1', '--verify']);
      expect(tampered.exitCode).not.toBe(0);
      expect(tampered.stderr).toContain('memory changed since it was saved');

      expect((await c.cli(['snapshot', 'rm', 'snap1'])).stdout).toBe('snap1');
      expect(existsSync(snap.dir)).toBe(false);
      expect(readdirSync(join(c.inst.home, 'state', 'snapshots'))).toEqual([]);
      expect(JSON.parse((await c.cli(['snapshot', 'list', '--json'])).stdout)).toEqual([]);
      const gone = await c.cli(['snapshot', 'show', 'snap1']);
      expect(gone.exitCode).not.toBe(0);
      expect(gone.stderr).toContain('snapshot "snap1" not found');
    },
  },
  {
    name: 'fork: two forks of one snapshot run side by side (own IP, MAC, hostname) and ping each other; a process from before the snapshot runs on in both; files diverge; rm in use and a tampered memory file are refused, no VM left',
    only: {
      backend: 'qemu',
      why: "the fake's stand-in guest is a host process: it has no memory, processes or network for a fork to carry over (Firecracker forks are checked against the API contract in test/integration/vm-firecracker-snapshot.test.ts)",
    },
    async run(c) {
      const sh = (vm: string, script: string) => c.cli(['vm', 'exec', vm, '--', 'sh', '-c', script]);
      let pid = '';
      try {
        const loop = `setsid sh -c 'echo $$ > /root/loop.pid; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &`;
        expect((await sh(VM, loop)).exitCode).toBe(0);
        await waitUntil(async () => (await sh(VM, 'test -s /root/loop.pid')).exitCode === 0, 60_000);
        pid = (await sh(VM, 'echo from-c1 > /root/before; cat /root/loop.pid')).stdout;
        expect(pid).toMatch(/^\d+$/);
        expect((await c.cli(['vm', 'snapshot', VM, 'base'])).exitCode).toBe(0);

        for (const name of ['fork-a', 'fork-b']) {
          const r = await c.cli(['vm', 'fork', 'base', '--name', name]);
          expect(r, r.stderr).toMatchObject({ exitCode: 0, stdout: name });
        }
        const shown = async (name: string) =>
          JSON.parse((await c.cli(['vm', 'show', name, '--json'])).stdout) as {
            state: string;
            runtime: { guestIp: string; forkOf?: { snapshotName: string } };
          };
        const [a, b, src] = [await shown('fork-a'), await shown('fork-b'), await shown(VM)];
        expect([a.state, b.state]).toEqual(['running', 'running']);
        expect(a.runtime.forkOf?.snapshotName).toBe('base');
        expect(new Set([a.runtime.guestIp, b.runtime.guestIp, src.runtime.guestIp]).size).toBe(3);
        const macs = new Set<string>();
        for (const [name, vm] of [
          ['fork-a', a],
          ['fork-b', b],
        ] as const) {
          // The guest took its new identity: hostname, address on eth0, and its own MAC.
          expect((await sh(name, 'hostname')).stdout).toBe(name);
          expect((await sh(name, 'ip -4 addr show dev eth0')).stdout).toContain(`${vm.runtime.guestIp}/`);
          macs.add((await sh(name, 'cat /sys/class/net/eth0/address')).stdout);
          // The process started before the snapshot runs on (same pid), and the file written before is there.
          expect((await sh(name, `kill -0 ${pid} && cat /root/before`)).stdout).toBe('from-c1');
        }
        macs.add((await sh(VM, 'cat /sys/class/net/eth0/address')).stdout);
        expect(macs.size).toBe(3);
        expect((await sh('fork-a', 'echo a > /root/only-a; sync')).exitCode).toBe(0);
        expect((await sh('fork-b', 'test -e /root/only-a')).exitCode).toBe(1);
        expect((await sh(VM, 'test -e /root/only-a')).exitCode).toBe(1);
        const ping = await sh('fork-a', `ping -c 1 -W 10 ${b.runtime.guestIp}`);
        expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);

        // A fork's later starts are cold boots on its own overlays: its file and identity stay.
        expect((await c.cli(['vm', 'stop', 'fork-a'])).exitCode).toBe(0);
        expect((await c.cli(['vm', 'start', 'fork-a'])).exitCode).toBe(0);
        expect((await sh('fork-a', 'hostname; cat /root/only-a /root/before')).stdout).toBe(
          'fork-a\na\nfrom-c1',
        );
        // A fork of a VM: snapshotted first under a generated name, which the fork keeps in use.
        const direct = await c.cli(['vm', 'fork', VM, '--name', 'fork-d']);
        expect(direct, direct.stderr).toMatchObject({ exitCode: 0, stdout: 'fork-d' });
        const taken = (await shown('fork-d')).runtime.forkOf?.snapshotName as string;
        expect(taken).toMatch(new RegExp(`^${VM}-[0-9a-f]{6}$`));
        expect((await sh('fork-d', `hostname; kill -0 ${pid} && echo alive`)).stdout).toBe('fork-d\nalive');
        expect((await c.cli(['vm', 'delete', 'fork-d'])).exitCode).toBe(0);
        expect((await c.cli(['snapshot', 'rm', taken])).exitCode).toBe(0);

        const inUse = await c.cli(['snapshot', 'rm', 'base']);
        expect(inUse.exitCode).not.toBe(0);
        expect(inUse.stderr).toContain('snapshot base is in use by VMs fork-a, fork-b');

        // A snapshot from another QEMU version: refused by the started QEMU before it reads the stream; the
        // fork is deleted again (its tap, IP and process are checked by afterAll's leftover scan).
        const vmsBefore = readdirSync(c.vmsDir).sort();
        const setVersion = (v: string) => {
          const db = new Database(join(c.inst.home, 'state', 'banger.db'));
          try {
            db.prepare(
              "UPDATE snapshots SET meta_json = json_set(meta_json, '$.vmm.version', ?) WHERE name = 'base'",
            ).run(v);
          } finally {
            db.close();
          }
        };
        const version = (
          JSON.parse((await c.cli(['snapshot', 'show', 'base', '--json'])).stdout) as {
            vmm: { version: string };
          }
        ).vmm.version;
        setVersion('0.0.1');
        const other = await c.cli(['vm', 'fork', 'base', '--name', 'fork-v']);
        setVersion(version);
        expect(other.exitCode).not.toBe(0);
        expect(other.stderr).toContain(`saved by QEMU 0.0.1 and this host runs QEMU ${version}`);
        expect((await c.cli(['vm', 'show', 'fork-v'])).exitCode).not.toBe(0);
        expect(readdirSync(c.vmsDir).sort()).toEqual(vmsBefore);

        // One byte of the memory file changed: refused before any VM is made.
        const snap = JSON.parse((await c.cli(['snapshot', 'show', 'base', '--json'])).stdout) as {
          dir: string;
        };
        const memPath = join(snap.dir, 'memory');
        const mem = readFileSync(memPath);
        mem[mem.length >> 1] = (mem[mem.length >> 1] as number) ^ 0xff;
        writeFileSync(memPath, mem);
        const tampered = await c.cli(['vm', 'fork', 'base', '--name', 'fork-t']);
        expect(tampered.exitCode).not.toBe(0);
        expect(tampered.stderr).toContain('memory changed since it was saved');
        expect((await c.cli(['vm', 'show', 'fork-t'])).exitCode).not.toBe(0);
        expect(readdirSync(c.vmsDir).sort()).toEqual(vmsBefore);

        for (const name of ['fork-a', 'fork-b'])
          expect((await c.cli(['vm', 'delete', name])).exitCode).toBe(0);
        expect((await c.cli(['snapshot', 'rm', 'base'])).exitCode).toBe(0);
        expect(readdirSync(join(c.inst.home, 'state', 'snapshots'))).toEqual([]);
      } finally {
        // Even when an assertion failed, so the cases after this one start from the one VM.
        for (const name of ['fork-a', 'fork-b', 'fork-d', 'fork-t', 'fork-v'])
          await c.cli(['vm', 'delete', name]);
        await sh(VM, `kill ${pid}; rm -f /root/loop.pid /root/before`);
      }
    },
  },
  {
    name: 'stop: the guest powers off, the VMM is gone, the tap goes back; exec is refused as not running',
    async run(c) {
      const r = await c.cli(['vm', 'stop', VM]);
      expect(r.exitCode, r.stderr).toBe(0);
      const vm = await c.show();
      expect(vm.state).toBe('stopped');
      expect(await c.vmmProcesses()).toEqual([]);
      // What outlives a stop: the disks and the IP and CID leases, nothing that runs.
      const kinds = (vm.runtime as { identities: { kind: string }[] }).identities.map((i) => i.kind).sort();
      expect(kinds).toEqual(['cid', 'file', 'file', 'ip']);
      const refused = await c.cli(['vm', 'exec', VM, '--', 'true']);
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr).toContain('not running');
    },
  },
  {
    name: 'start and restart: the same VM boots again with its address and CID kept',
    async run(c) {
      const before = await c.show();
      const cids = c.leases('cid-leases.json');
      expect((await c.cli(['vm', 'start', VM])).exitCode).toBe(0);
      expect((await c.cli(['vm', 'exec', VM, '--', 'echo', 'back'])).stdout).toBe('back');
      const first = await c.vmmProcesses();
      const r = await c.cli(['vm', 'restart', VM]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect((await c.cli(['vm', 'exec', VM, '--', 'echo', 'again'])).stdout).toBe('again');
      const second = await c.vmmProcesses();
      expect(second.some((p) => first.includes(p))).toBe(false);
      const after = await c.show();
      expect((after.runtime as Json).guestIp).toBe((before.runtime as Json).guestIp);
      expect(c.leases('cid-leases.json')).toEqual(cids);
    },
  },
  {
    name: 'kill: the VMM ends at once, the VM is stopped, and it starts again',
    async run(c) {
      const r = await c.cli(['vm', 'kill', VM]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect((await c.show()).state).toBe('stopped');
      expect(await c.vmmProcesses()).toEqual([]);
      expect((await c.cli(['vm', 'start', VM])).exitCode).toBe(0);
      expect((await c.show()).state).toBe('running');
    },
  },
  {
    name: 'daemon SIGKILLed: the next daemon adopts the running VM (same VMM, still answering)',
    async run(c) {
      const vmm = await c.vmmProcesses();
      const pid = c.inst.daemonPid() as number;
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => !processAlive(pid));
      const r = await c.cli(['vm', 'exec', VM, '--', 'echo', 'still here']);
      expect(r.stdout, r.stderr).toBe('still here');
      expect((await c.vmmProcesses()).sort()).toEqual(vmm.sort());
      expect((await c.show()).state).toBe('running');
    },
  },
  {
    name: "daemon SIGKILLed and the VMM dead too: the next daemon's reconcile tears down what is left",
    async run(c) {
      const vmm = await c.vmmProcesses();
      const pid = c.inst.daemonPid() as number;
      process.kill(pid, 'SIGKILL');
      for (const p of vmm) process.kill(p, 'SIGKILL');
      await waitUntil(() => !processAlive(pid) && vmm.every((p) => !processAlive(p)));
      const vm = await c.show();
      expect(vm.state).toBe('stopped');
      const kinds = (vm.runtime as { identities: { kind: string }[] }).identities.map((i) => i.kind).sort();
      expect(kinds).toEqual(['cid', 'file', 'file', 'ip']);
      const taps = (await listLinks(c.fx.runner, c.ns)).filter((l) => l.kind === 'tun');
      expect(taps.length).toBeLessThanOrEqual(1); // the pool's one idle tap
      expect((await c.cli(['vm', 'start', VM])).exitCode).toBe(0);
      expect((await c.cli(['vm', 'exec', VM, '--', 'true'])).exitCode).toBe(0);
    },
  },
  {
    name: 'delete: everything the VM owned is gone (process, dir, leases, tap)',
    async run(c) {
      const r = await c.cli(['vm', 'delete', VM]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse((await c.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
      expect(await c.vmmProcesses()).toEqual([]);
      expect(existsSync(c.vmsDir) ? readdirSync(c.vmsDir) : []).toEqual([]);
      expect(c.leases('ip-leases.json')).toEqual({});
      expect(c.leases('cid-leases.json')).toEqual({});
      const taps = (await listLinks(c.fx.runner, c.ns)).filter((l) => l.kind === 'tun');
      expect(taps.length).toBeLessThanOrEqual(1);
    },
  },
  {
    name: 'the VM configuration went through the Firecracker API in order, every call accepted',
    only: { backend: 'firecracker', why: 'QEMU takes its configuration on the command line, not an API' },
    async run(c) {
      const calls = readFileSync(join(c.inst.home, 'fc-calls.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { method: string; path: string; status: number });
      expect(calls.length).toBeGreaterThan(0);
      expect(calls.filter((x) => x.status >= 400)).toEqual([]);
      const paths = calls.filter((x) => x.method === 'PUT').map((x) => x.path);
      expect(paths.indexOf('/boot-source')).toBeLessThan(paths.indexOf('/actions'));
      expect(paths.indexOf('/vsock')).toBeLessThan(paths.indexOf('/actions'));
      const states = calls.filter((x) => x.method === 'PATCH' && x.path === '/vm');
      // vm pause/resume, then the pause around vm snapshot.
      expect(states.map((x) => (x as unknown as { body: { state: string } }).body.state)).toEqual([
        'Paused',
        'Resumed',
        'Paused',
        'Resumed',
      ]);
      expect(paths).toContain('/snapshot/create');
    },
  },
];

interface Backend {
  name: BackendName;
  /** Makes the instance (config, image `guest`) and returns the environment its CLI runs with. */
  setup(fx: NetnsFixture, ns: string, inst: BangerInstance): Promise<Record<string, string>>;
}

const BACKENDS: Backend[] = [
  {
    name: 'qemu',
    async setup(fx, ns, inst) {
      await mkdir(join(inst.home, 'config'), { recursive: true });
      await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
      const kernel = await ensureTestKernel();
      const rootfs = await buildGuestRoot(fx.runner, await fx.tempDir());
      writeInstanceConfig(inst.home, ns, fx.id.slice(6));
      registerImage(inst.home, {
        name: 'guest',
        rootfsPath: rootfs,
        kernelPath: kernel.kernelPath,
        initrdPath: kernel.initrdPath,
      });
      return {};
    },
  },
  {
    name: 'firecracker',
    setup(fx, ns, inst) {
      return setupFirecrackerInstance({
        fx,
        ns,
        inst,
        bridgeIp: '172.28.0.1',
        imageName: 'guest',
        callsFile: join(inst.home, 'fc-calls.jsonl'),
      });
    },
  },
];

async function probe(): Promise<string | undefined> {
  if (!existsSync(agentBinaryPath())) return `the agent is not built (${agentBinaryPath()}): npm run build`;
  if (!existsSync(join(REPO_ROOT, 'dist'))) return 'the CLI is not built: npm run build';
  return undefined;
}
const notBuilt = await probe();

for (const backend of BACKENDS) {
  describe(`VMM backend contract: ${backend.name}`, () => {
    const fx = createNetnsFixture();
    let ctx: Ctx;

    beforeAll(async () => {
      if (notBuilt) throw new Error(notBuilt);
      const ns = await fx.createNetns(backend.name.slice(0, 2));
      const inst = createInstance();
      const env = await backend.setup(fx, ns, inst);
      const state = join(inst.home, 'state');
      const vmsDir = join(state, 'vms');
      const cli = async (args: string[], input?: string): Promise<CliResult> => {
        const r = await execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], {
          env: { ...inst.env, ...env },
          reject: false,
          timeout: 300_000,
          ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
        });
        return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
      };
      ctx = {
        backend: backend.name,
        inst,
        ns,
        fx,
        cli,
        vmsDir,
        async show() {
          const r = await cli(['vm', 'show', VM, '--json']);
          expect(r.exitCode, r.stderr).toBe(0);
          return JSON.parse(r.stdout) as Json;
        },
        async vmmProcesses() {
          return (await processesNaming(vmsDir)).map((p) => p.pid);
        },
        leases(file) {
          const path = join(state, file);
          return existsSync(path)
            ? (JSON.parse(readFileSync(path, 'utf8')) as { leases: Record<string, string> }).leases
            : {};
        },
        handles(vmId) {
          return JSON.parse(readFileSync(join(vmsDir, vmId, 'handles.json'), 'utf8')) as Json;
        },
      };
    });

    afterAll(async () => {
      if (ctx) {
        const list = await ctx.cli(['vm', 'list', '--json']);
        for (const vm of JSON.parse(list.stdout || '[]') as { id: string }[])
          await ctx.cli(['vm', 'delete', vm.id]);
        await ctx.cli(['daemon', 'stop']);
        for (const p of await ctx.vmmProcesses()) process.kill(p, 'SIGKILL');
        await ctx.inst.cleanup();
      }
      await fx.cleanup();
      await fx.assertNoLeftovers();
    });

    for (const c of CASES.filter((x) => !x.only || x.only.backend === backend.name))
      it(c.name, { timeout: 600_000 }, () => c.run(ctx));
  });
}
