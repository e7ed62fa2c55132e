/**
 * The hostile guest: a stand-in agent (test/fixtures/hostile-agent.mjs, a real process on a real unix
 * socket) that answers with endless data, a frame header claiming 4 GiB, or one byte per 100 ms. Driven
 * through the real host-side client, then through the VM service with the stand-in VMM running it as its
 * guest. Every call fails with a clear error in bounded time, the process holding the client (the daemon
 * here) grows by less than RSS_BUDGET, and it keeps answering.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { vmPaths } from '../../src/daemon/services/vms/index.js';
import { type AgentClient, connectAgent } from '../../src/guest/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';
import { createStandinVmm, hostAgentGuest } from '../fixtures/standin-vmm.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

const HOSTILE_AGENT = join(import.meta.dirname, '..', 'fixtures', 'hostile-agent.mjs');
/** What a hostile guest may cost the process that talks to it, at most. */
const RSS_BUDGET = 64 * 1024 * 1024;
const HOST_KEY = '/etc/ssh/ssh_host_ed25519_key.pub';

const fx = createNetnsFixture();
const runner = fx.runner;
let root: string;
let n = 0;

beforeAll(async () => {
  root = await fx.tempDir();
});
afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

type Mode = 'ok' | 'endless' | 'huge' | 'drip';

/** The event loop still turns quickly: the daemon's RPC server would answer a ping. */
async function answersPromptly(): Promise<void> {
  const t0 = performance.now();
  await new Promise((r) => setImmediate(r));
  expect(performance.now() - t0).toBeLessThan(200);
}

const rss = () => process.memoryUsage().rss;

describe('the agent client against a hostile agent', () => {
  let agent: ChildProcess | undefined;
  let client: AgentClient | undefined;
  const spawned: ChildProcess[] = [];

  async function hostile(readFile: Mode, exec: Mode): Promise<AgentClient> {
    const socketPath = join(root, `a${n++}.sock`);
    agent = spawn(process.execPath, [HOSTILE_AGENT, readFile, exec, '--listen-unix', socketPath], {
      stdio: 'ignore',
    });
    spawned.push(agent);
    while (!existsSync(socketPath)) await sleep(20);
    client = await connectAgent({ kind: 'virtio-serial', socketPath });
    return client;
  }

  afterEach(() => {
    client?.close();
    for (const a of spawned.splice(0)) a.kill('SIGKILL');
  });

  const cases: { mode: Mode; readFile: RegExp; exec: RegExp; withinMs: number }[] = [
    {
      mode: 'endless',
      readFile: /^the guest sent more than 64 KiB for \/etc\/ssh\/ssh_host_ed25519_key\.pub$/,
      exec: /^the guest sent more than 1 MiB for the test command$/,
      withinMs: 5000,
    },
    {
      mode: 'huge',
      readFile: /^agent sent a frame of bad length 4294967295$/,
      exec: /^agent sent a frame of bad length 4294967295$/,
      withinMs: 5000,
    },
    {
      mode: 'drip',
      readFile: /^the guest did not finish sending \/etc\/ssh\/ssh_host_ed25519_key\.pub within 1\.5 s$/,
      exec: /^the guest did not finish sending the test command within 1\.5 s$/,
      withinMs: 6000,
    },
  ];

  for (const c of cases) {
    it(`${c.mode}: readFile and a collected exec fail with a clear error, bounded in time and memory`, async () => {
      const before = rss();
      for (const op of ['readFile', 'exec'] as const) {
        const a = await hostile(op === 'readFile' ? c.mode : 'ok', op === 'exec' ? c.mode : 'ok');
        const t0 = Date.now();
        const call =
          op === 'readFile'
            ? a.readFile(HOST_KEY, { maxBytes: 64 * 1024, timeoutMs: 1500 })
            : a
                .exec(
                  { argv: ['sh', '-c', 'cat /dev/zero'] },
                  {
                    stdout: devNull(),
                    stderr: devNull(),
                    limit: { maxBytes: 1024 * 1024, timeoutMs: 1500, what: 'the test command' },
                  },
                )
                .wait();
        const err = await call.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${op} resolved`).toMatchObject({ code: 'operation_failed' });
        expect((err as Error).message).toMatch(c[op]);
        expect(Date.now() - t0).toBeLessThan(c.withinMs);
        // The connection is dropped: the agent sees it close (its commands would be killed).
        expect(a.closed).toBe(true);
        await new Promise<void>((r) => (agent?.exitCode === null ? setTimeout(r, 50) : r()));
        agent?.kill('SIGKILL');
        await answersPromptly();
      }
      expect(rss() - before).toBeLessThan(RSS_BUDGET);
    }, 30_000);
  }
});

function devNull(): Writable {
  return new Writable({ write: (_c, _e, done) => done() });
}

describe('the VM service with a hostile guest (stand-in VMM, real store, taps in a namespace)', () => {
  const bridge = `br-fc-${fx.id.slice(6)}`;
  const bridgeIp = '172.29.7.1';
  let ns: string;
  let imagePath: string;
  const harnesses: VmHarness[] = [];

  beforeAll(async () => {
    ns = await fx.createNetns('hostile');
    await fx.addClosedUplink(ns); // nothing leaves the namespace
    imagePath = join(root, 'tiny.ext4');
    await runner.run(['truncate', '-s', '24M', imagePath]);
    await runner.run(['mkfs.ext4', '-F', '-q', imagePath]);
  });
  afterAll(async () => {
    for (const h of harnesses.splice(0)) await h.discard();
  });

  const instanceId = randomBytes(16).toString('hex');

  /** A service whose VMs' guest is the hostile agent, answering read_file and exec as told. */
  function withGuest(readFile: Mode, exec: Mode): VmHarness {
    const wrapper = join(root, `agent-${readFile}-${exec}.sh`);
    writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${HOSTILE_AGENT} ${readFile} ${exec} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const stateDir = join(root, `s${n++}`);
    const h = buildVmHarness({
      stateDir,
      netns: ns,
      bridge,
      bridgeIp,
      instanceId, // every harness here shares the bridge, so they are one banger instance (link mark)
      vmm: createStandinVmm(runner, ns, { agentBinary: wrapper }),
      guest: hostAgentGuest(),
      ssh: {
        keyPath: join(stateDir, 'id_ed25519'),
        knownHostsPath: join(stateDir, 'known_hosts'),
        configPath: join(stateDir, 'ssh_config'),
      },
    });
    harnesses.push(h);
    addImage(h.store, 'tiny', imagePath);
    return h;
  }

  /** The failed start left no process in the VM's run dir, and the service still answers. */
  async function failedCleanly(h: VmHarness, name: string, message: RegExp): Promise<void> {
    const vm = h.service.get(name);
    expect(vm.state).toBe('error');
    expect(vm.runtime.lastError).toMatch(message);
    expect(await processesNaming(vmPaths(h.deps.vmsDir, vm.id).run)).toEqual([]);
    expect(h.service.list().map((v) => v.name)).toContain(name);
    await answersPromptly();
  }

  it('endless exec output: the start fails at the work disk mount, memory bounded, nothing left running', async () => {
    const h = withGuest('ok', 'endless');
    const before = rss();
    const t0 = Date.now();
    const err = await h.service.create({ name: 'flood', image: 'tiny' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'operation_failed' });
    expect((err as Error).message).toBe('the guest sent more than 1 MiB for the work disk mount');
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(rss() - before).toBeLessThan(RSS_BUDGET);
    await failedCleanly(h, 'flood', /more than 1 MiB for the work disk mount/);
  }, 60_000);

  it('a 4 GiB frame header: the start fails at once naming the bad frame', async () => {
    const h = withGuest('ok', 'huge');
    const before = rss();
    const err = await h.service.create({ name: 'huge', image: 'tiny' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('agent sent a frame of bad length 4294967295');
    expect(rss() - before).toBeLessThan(RSS_BUDGET);
    await failedCleanly(h, 'huge', /bad length 4294967295/);
  }, 60_000);

  for (const mode of ['endless', 'drip'] as const) {
    it(`${mode} host key: the VM starts (pinning is best effort), vm ssh fails clearly, the VM keeps working`, async () => {
      const h = withGuest(mode, 'ok');
      const before = rss();
      const vm = await h.service.create({ name: `key-${mode}`, image: 'tiny' });
      expect(vm.state).toBe('running');
      const t0 = Date.now();
      const err = await h.service.sshCommand(vm.name).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'operation_failed' });
      expect((err as Error).message).toBe(
        mode === 'endless'
          ? `the guest sent more than 64 KiB for ${HOST_KEY}`
          : `the guest did not finish sending ${HOST_KEY} within 10 s`,
      );
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(rss() - before).toBeLessThan(RSS_BUDGET);
      const knownHosts = join(h.deps.stateDir, 'known_hosts');
      expect(existsSync(knownHosts) ? readFileSync(knownHosts, 'utf8').trim() : '').toBe('');
      // The dropped connection is replaced: the next call reaches the guest again.
      const { ports } = await h.service.ports(vm.name);
      expect(ports.map((p) => p.port)).toEqual([22]);
      await answersPromptly();
    }, 60_000);
  }

  it('a work disk the guest corrupted: growing it fails with a clear error, the service stays up', async () => {
    const h = withGuest('ok', 'ok');
    const vm = await h.service.create({ name: 'scribbled', image: 'tiny' });
    await h.service.stop(vm.name);
    const disk = vmPaths(h.deps.vmsDir, vm.id).workDisk;
    const size = statSize(disk);
    // The guest wrote over the superblock and the group descriptors (it owns the disk while it runs).
    await runner.run([
      'dd',
      'if=/dev/urandom',
      `of=${disk}`,
      'bs=64K',
      'count=1',
      'conv=notrunc',
      'status=none',
    ]);
    // Today growWorkDisk refuses the disk after e2fsck; whatever runs the check, the message names the disk.
    const err = await h.service.set(vm.name, { diskSizeBytes: 64 * 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'operation_failed' });
    expect((err as Error).message).toContain(disk);
    expect(h.service.get(vm.name).spec.diskSizeBytes).toBe(vm.spec.diskSizeBytes);
    expect(statSize(disk)).toBe(size);
    await answersPromptly();
  }, 60_000);
});

function statSize(path: string): number {
  return statSync(path).size;
}
