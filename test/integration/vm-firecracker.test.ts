/**
 * `banger vm …` with BANGER_VMM=firecracker: the built CLI, a real daemon, and the fake `firecracker` on
 * PATH (it validates every API call against firecracker-api.yaml, as the real one would refuse them). On
 * InstanceStart the fake runs a stand-in guest, the real banger-agent, reached the way a real guest is:
 * through the hybrid vsock socket from PUT /vsock (`CONNECT 1024` -> `OK`), then the agent protocol. KVM
 * cannot be had here, so the daemon is told not to probe it (`BANGER_KVM_CHECK=skip`, a documented key for
 * hosts without QEMU to probe with); the fake needs none. Bridge, taps and leases live in a namespace and a
 * BANGER_HOME this file creates and deletes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBinaryPath } from '../../src/guest/index.js';
import { listLinks } from '../../src/host/index.js';
import { type BangerInstance, createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';
import { setupFirecrackerInstance } from '../fixtures/firecracker-fake/instance.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();
const runner = fx.runner;

async function probe(): Promise<string | undefined> {
  if (!existsSync(agentBinaryPath())) return `the agent is not built (${agentBinaryPath()}): npm run build`;
  if (!existsSync(join(REPO_ROOT, 'dist'))) return 'the CLI is not built: npm run build';
  if (process.getuid?.() !== 0) return "not root (taps, and the stand-in guest's mount namespace, need it)";
  return undefined;
}
const skipReason = await probe();
if (skipReason) console.warn(`vm firecracker tests skipped: ${skipReason}`);

type Recorded = { method: string; path: string; body?: Record<string, unknown>; status: number };
type Json = Record<string, unknown>;

describe.skipIf(skipReason !== undefined)('banger vm with Firecracker (the fake, a stand-in guest)', () => {
  let inst: BangerInstance;
  let ns: string;
  let work: string;
  let env: Record<string, string>;
  const state = () => join(inst.home, 'state');
  const vmsDir = () => join(state(), 'vms');
  const cli = (args: string[]) => inst.cli(args, env);
  const leases = (file: string): Record<string, string> => {
    const path = join(state(), file);
    return existsSync(path)
      ? (JSON.parse(readFileSync(path, 'utf8')) as { leases: Record<string, string> }).leases
      : {};
  };
  const calls = (): Recorded[] =>
    readFileSync(join(work, 'calls.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Recorded);
  const show = async (name: string): Promise<Json> => {
    const r = await cli(['vm', 'show', name, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Json;
  };

  beforeAll(async () => {
    ns = await fx.createNetns('fc');
    work = await fx.tempDir();
    inst = createInstance();
    // The fake, as `firecracker` on PATH, with the agent as its guest.
    env = await setupFirecrackerInstance({
      fx,
      ns,
      inst,
      bridgeIp: '172.29.0.1',
      imageName: 'tiny',
      callsFile: join(work, 'calls.jsonl'),
    });
  });

  afterAll(async () => {
    if (inst) {
      // A failed case may leave VMs running, and a daemon stop keeps VMs running: delete them first, then
      // kill whatever still runs from the VMs dir (the fake and its stand-in guest are host processes).
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

  it('vm run --rm reaches the guest agent over hybrid vsock and returns its exit code, leaving nothing', async () => {
    const r = await cli(['vm', 'run', '--rm', 'tiny', '--', 'sh', '-c', 'echo from-guest; exit 7']);
    expect(r.stdout).toContain('from-guest');
    expect(r.exitCode, r.stderr).toBe(7);
    // The VM was configured through the API with its leased CID and the vsock socket it was reached on.
    const vsock = calls().find((c) => c.path === '/vsock');
    expect(vsock?.status).toBe(204);
    expect(vsock?.body?.guest_cid).toBe(3);
    expect(calls().every((c) => c.status < 400)).toBe(true);
    // Nothing left: no VM, no process or socket of it, no leases, and only the pool's idle tap.
    expect(JSON.parse((await cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
    expect(await processesNaming(vmsDir())).toEqual([]);
    expect(existsSync(vmsDir()) ? await readdir(vmsDir()) : []).toEqual([]);
    expect(leases('cid-leases.json')).toEqual({});
    expect(leases('ip-leases.json')).toEqual({});
    const taps = (await listLinks(runner, ns)).filter((l) => l.kind === 'tun');
    expect(taps.length).toBeLessThanOrEqual(1);
  });

  it('gives two VMs different CIDs, keeps them across a daemon restart, and frees them at delete', async () => {
    for (const name of ['fc-a', 'fc-b']) {
      const r = await cli(['vm', 'create', '--name', name, '--image', 'tiny']);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const a = await show('fc-a');
    const b = await show('fc-b');
    const cidOf = (vm: Json) =>
      Number(Object.entries(leases('cid-leases.json')).find(([, o]) => o === vm.id)?.[0]);
    expect([cidOf(a), cidOf(b)].sort()).toEqual([3, 4]);
    // Recorded as the VM's identity before the VMM started, and given to it.
    const handles = JSON.parse(readFileSync(join(vmsDir(), String(a.id), 'handles.json'), 'utf8')) as {
      identities: Json[];
    };
    expect(handles.identities).toContainEqual({ kind: 'cid', cid: cidOf(a) });
    const vsockCids = calls()
      .filter((c) => c.path === '/vsock')
      .map((c) => c.body?.guest_cid);
    expect(vsockCids.slice(-2).sort()).toEqual([3, 4]);

    // The daemon dies; the next one reconciles: the VMs are adopted, their CIDs still theirs.
    const pid = inst.daemonPid();
    expect(pid).toBeDefined();
    process.kill(pid as number, 'SIGKILL');
    const exec = await cli(['vm', 'exec', 'fc-a', '--', 'sh', '-c', 'exit 3']);
    expect(exec.exitCode, exec.stderr).toBe(3);
    expect(leases('cid-leases.json')).toEqual({ [cidOf(a)]: a.id, [cidOf(b)]: b.id });
    // A third VM after the restart does not get a CID that is still held.
    expect((await cli(['vm', 'create', '--name', 'fc-c', '--image', 'tiny'])).exitCode).toBe(0);
    const c = await show('fc-c');
    expect(cidOf(c)).toBe(5);

    const cidA = cidOf(a);
    expect((await cli(['vm', 'delete', 'fc-a'])).exitCode).toBe(0);
    expect(Object.values(leases('cid-leases.json'))).not.toContain(a.id);
    // The lowest free CID is handed out again.
    expect((await cli(['vm', 'create', '--name', 'fc-d', '--image', 'tiny'])).exitCode).toBe(0);
    expect(cidOf(await show('fc-d'))).toBe(cidA);

    for (const name of ['fc-b', 'fc-c', 'fc-d']) expect((await cli(['vm', 'delete', name])).exitCode).toBe(0);
    expect(leases('cid-leases.json')).toEqual({});
    expect(await processesNaming(vmsDir())).toEqual([]);
  });

  it('vm forward relays TCP through the agent over hybrid vsock', async () => {
    // The stand-in guest runs where the fake VMM does, in the VMs' namespace: its loopback is the guest's.
    const { connect } = await import('node:net');
    const guestPort = 7300;
    const echo = `require('net').createServer({allowHalfOpen:true},c=>c.pipe(c)).listen(${guestPort},'127.0.0.1',()=>console.log('up'))`;
    const server = runner.spawn([process.execPath, '-e', echo], { netns: ns, pipe: true });
    try {
      await new Promise((r) => server.stdout?.once('data', r));
      expect((await cli(['vm', 'create', '--name', 'fc-fwd', '--image', 'tiny'])).exitCode).toBe(0);
      const added = await cli(['vm', 'forward', 'fc-fwd', `0:${guestPort}`, '--json']);
      expect(added.exitCode, added.stderr).toBe(0);
      const hostPort = (JSON.parse(added.stdout) as { forwards: { hostPort: number }[] }).forwards[0]!
        .hostPort;
      const echoed = await new Promise<string>((resolve, reject) => {
        const sock = connect({ port: hostPort, host: '127.0.0.1', allowHalfOpen: true });
        let got = '';
        sock.on('data', (d: Buffer) => {
          got += d.toString();
        });
        sock.on('error', reject);
        sock.on('close', () => resolve(got));
        sock.end('over hybrid vsock');
      });
      expect(echoed).toBe('over hybrid vsock');
      expect((await cli(['vm', 'delete', 'fc-fwd'])).exitCode).toBe(0);
      expect((await cli(['vm', 'forward', '--list', 'fc-fwd'])).exitCode).toBe(1); // the VM is gone
    } finally {
      server.kill('SIGKILL');
    }
  });
});
