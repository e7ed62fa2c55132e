/**
 * `banger.ip=` applied by the agent itself (for kernels booted without banger's initramfs). The agent runs
 * in its host test mode (`--listen-unix PATH --cmdline FILE ROOT`) inside a network namespace this file
 * creates, with a veth `eth0` standing in for the guest's virtio-net; `ip -j` in that namespace shows what
 * it did.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { type AgentClient, agentBinaryPath, waitForAgent } from '../../src/guest/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';

const fx = createNetnsFixture();
const runner = fx.runner;

async function probe(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root (network namespaces need root)';
  if (!existsSync(agentBinaryPath())) {
    const built = await runner.run(['make', '-s', '-C', join(agentBinaryPath(), '..', '..')], {
      allowFailure: true,
    });
    if (built.exitCode !== 0) return `the agent does not build: ${built.stderr.trim()}`;
  }
  const ns = `${fx.id}-probe`;
  const made = await runner.run(['ip', 'netns', 'add', ns], { allowFailure: true });
  if (made.exitCode !== 0) return `cannot create a network namespace: ${made.stderr.trim()}`;
  const veth = await runner.run(['ip', '-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0'], {
    allowFailure: true,
  });
  await runner.run(['ip', 'netns', 'del', ns], { allowFailure: true });
  if (veth.exitCode !== 0) return `cannot create a veth pair: ${veth.stderr.trim()}`;
  return undefined;
}
const skipReason = await probe();
if (skipReason) console.warn(`guest-agent network tests skipped: ${skipReason}`);

interface IpAddr {
  ifname: string;
  flags: string[];
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev: string;
}

/** A namespace with `eth0` (one end of a veth, the other end up, so eth0 gets a carrier once it is up). */
async function guestNetns(suffix: string): Promise<string> {
  const ns = await fx.createNetns(suffix);
  await fx.exec(ns, ['ip', 'link', 'set', 'lo', 'down']);
  await fx.exec(ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
  await fx.exec(ns, ['ip', 'link', 'set', 'peer0', 'up']);
  return ns;
}

async function links(ns: string): Promise<Map<string, IpAddr>> {
  const all = JSON.parse(await fx.exec(ns, ['ip', '-j', 'addr', 'show'])) as IpAddr[];
  return new Map(all.map((l) => [l.ifname, l]));
}

async function ipv4(ns: string, ifname: string): Promise<string[]> {
  const link = (await links(ns)).get(ifname);
  return (link?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

async function defaultRoutes(ns: string): Promise<IpRoute[]> {
  return JSON.parse(await fx.exec(ns, ['ip', '-j', 'route', 'show', 'default'])) as IpRoute[];
}

const started: ChildProcess[] = [];

/** Starts the agent in NS with this kernel command line and waits until it answers health. */
async function startAgent(ns: string, cmdline: string): Promise<AgentClient> {
  const dir = await fx.tempDir();
  const root = join(dir, 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(dir, 'cmdline'), `${cmdline}\n`);
  const sock = join(dir, 'agent.sock');
  const child = runner.spawn(
    [agentBinaryPath(), '--listen-unix', sock, '--cmdline', join(dir, 'cmdline'), root],
    {
      netns: ns,
      pipe: true,
    },
  );
  child.stdin?.end();
  child.stderr?.resume();
  started.push(child);
  return waitForAgent({ kind: 'virtio-serial', socketPath: sock }, { timeoutMs: 60_000 });
}

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe.skipIf(skipReason !== undefined)('banger-agent applies banger.ip=', () => {
  it('configures the address, lo and eth0 up, and the default route, from scratch', async () => {
    const ns = await guestNetns('scratch');
    const client = await startAgent(ns, 'console=ttyS0 banger.ip=10.77.0.2/24,10.77.0.1,eth0 quiet');
    try {
      expect((await client.health()).network).toBe('configured');
      expect(await ipv4(ns, 'eth0')).toEqual(['10.77.0.2/24']);
      const all = await links(ns);
      expect(all.get('eth0')?.flags).toContain('UP');
      expect(all.get('lo')?.flags).toContain('UP');
      expect(await defaultRoutes(ns)).toEqual([
        expect.objectContaining({ gateway: '10.77.0.1', dev: 'eth0' }),
      ]);
    } finally {
      client.close();
    }
  });

  it('defaults the interface to eth0 and adds no route without a gateway', async () => {
    const ns = await guestNetns('nogw');
    const client = await startAgent(ns, 'banger.ip=10.77.1.5/16');
    try {
      expect((await client.health()).network).toBe('configured');
      expect(await ipv4(ns, 'eth0')).toEqual(['10.77.1.5/16']);
      expect(await defaultRoutes(ns)).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('leaves an interface that already has the address untouched (the initramfs did it)', async () => {
    const ns = await guestNetns('already');
    await fx.exec(ns, ['ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'eth0']);
    const before = await links(ns);
    const client = await startAgent(ns, 'banger.ip=10.77.0.2/24,10.77.0.1,eth0');
    try {
      expect((await client.health()).network).toBe('already');
      // eth0 and lo stay down and no route appears: nothing was touched.
      expect(await links(ns)).toEqual(before);
      expect(before.get('eth0')?.flags).not.toContain('UP');
      expect(await defaultRoutes(ns)).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('reports a missing interface in health and still serves exec', async () => {
    const ns = await guestNetns('missing');
    const before = await links(ns);
    const client = await startAgent(ns, 'banger.ip=10.77.0.2/24,10.77.0.1,eth9');
    try {
      const health = await client.health();
      expect(health.network).toMatch(/^error: /);
      expect(health.network).toContain('eth9');
      const out = new PassThrough();
      let text = '';
      out.on('data', (d: Buffer) => {
        text += d.toString();
      });
      const result = await client
        .exec({ argv: ['echo', 'still here'] }, { stdout: out, stderr: new PassThrough() })
        .wait();
      expect(result).toEqual({ exitCode: 0, signal: null });
      expect(text).toBe('still here\n');
      expect(await links(ns)).toEqual(before);
    } finally {
      client.close();
    }
  });

  it('rejects a malformed banger.ip without touching the network', async () => {
    const ns = await guestNetns('hostile');
    const before = await links(ns);
    const client = await startAgent(ns, 'banger.ip=10.77.0.2/99,;rm,eth0');
    try {
      expect((await client.health()).network).toMatch(/^error: banger\.ip=/);
      expect(await links(ns)).toEqual(before);
    } finally {
      client.close();
    }
  });

  it('reports "none" without banger.ip', async () => {
    const ns = await guestNetns('none');
    const client = await startAgent(ns, 'console=ttyS0 banger.hostname=box-2');
    try {
      expect((await client.health()).network).toBe('none');
    } finally {
      client.close();
    }
  });
});
