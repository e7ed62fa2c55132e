/**
 * Port forwards through the real agent: the VM service over real parts (SQLite, bridge and taps in a
 * namespace this file creates) with the stand-in VMM running the real banger-agent binary as the "guest",
 * inside that namespace. The guest's servers are node processes in the namespace (its loopback is the
 * guest's); the host's clients connect from this process's (the host's) namespace to the forward service,
 * which relays through the agent's connect stream. Covers many connections at once, half-closes, a 100 MB
 * transfer checked by sha256, resets both ways, nothing listening, VM stop and a daemon restart, --auto,
 * and a hostile agent.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createForwardService,
  type ForwardService,
  parseForwardSpec,
} from '../../src/daemon/services/forwards/index.js';
import { vmPaths } from '../../src/daemon/services/vms/index.js';
import { agentBinaryPath } from '../../src/guest/index.js';
import { waitUntil } from '../fixtures/banger-instance.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { createStandinVmm, hostAgentGuest } from '../fixtures/standin-vmm.js';
import { addImage, buildVmHarness, type VmHarness } from '../fixtures/vm-harness.js';

const HOSTILE_AGENT = join(import.meta.dirname, '..', 'fixtures', 'hostile-agent.mjs');
const fx = createNetnsFixture();
const runner = fx.runner;
const token = fx.id.slice(6);
const bridge = `br-fc-${token}`;
const bridgeIp = '172.27.0.1';
const instanceId = randomBytes(16).toString('hex');
const MiB = 1024 * 1024;

/**
 * A server in the guest's namespace: `echo` sends back what it reads and ends when the client ends (a
 * half-close); `stall` never reads (its socket buffers fill); `report` prints how each connection ended.
 */
const SERVER = `const net=require('net');const [mode,port]=process.argv.slice(1);
net.createServer({allowHalfOpen:true},c=>{c.on('error',e=>console.log('error '+e.code));
if(mode==='echo')c.pipe(c);else if(mode==='stall')c.pause();else{c.on('data',()=>{});c.on('end',()=>{console.log('end');c.end();});}
}).listen(+port,'127.0.0.1',()=>console.log('listening'));`;

let ns: string;
let root: string;
let n = 0;
const children: ChildProcess[] = [];

async function guestServer(mode: 'echo' | 'stall' | 'report', port: number) {
  const child = runner.spawn([process.execPath, '-e', SERVER, mode, String(port)], { netns: ns, pipe: true });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitUntil(() => out.includes('listening'), 20_000);
  return { child, output: () => out };
}

/** A guard against a hang, not a timing assertion. */
function guard<T>(p: Promise<T>, what: string, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (a hang)`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Exchange {
  data: Buffer;
  /** The socket error code, when the connection did not end in order. */
  error?: string;
}

/** Connects to a host port, sends payload, half-closes, reads until the server's end (or a reset). */
function exchange(port: number, payload: Buffer | (() => AsyncIterable<Buffer>)): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let error: string | undefined;
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    sock.on('close', () => resolve({ data: Buffer.concat(chunks), ...(error && { error }) }));
    const pump = async (source: () => AsyncIterable<Buffer>) => {
      for await (const chunk of source()) {
        if (sock.destroyed) return;
        if (!sock.write(chunk))
          await new Promise<void>((r) => {
            const go = () => {
              sock.off('drain', go).off('close', go);
              r();
            };
            sock.on('drain', go).on('close', go);
          });
      }
      sock.end();
    };
    sock.on('connect', () => {
      if (Buffer.isBuffer(payload)) sock.end(payload);
      else pump(payload).catch(() => {});
    });
  });
}

const listenable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s: Server = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

// The agent is this suite's subject: built when missing, and a build failure fails the suite.
if (!existsSync(agentBinaryPath()))
  await runner.run(['make', '-s', '-C', join(agentBinaryPath(), '..', '..')]);

beforeAll(async () => {
  ns = await fx.createNetns('fwd');
  root = await fx.tempDir();
  await runner.run(['truncate', '-s', '24M', join(root, 'tiny.ext4')]);
  await runner.run(['mkfs.ext4', '-F', '-q', join(root, 'tiny.ext4')]);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

function harness(stateDir: string, agent = agentBinaryPath()): VmHarness {
  const h = buildVmHarness({
    stateDir,
    netns: ns,
    bridge,
    bridgeIp,
    instanceId,
    vmm: createStandinVmm(runner, ns, { agentBinary: agent }),
    guest: hostAgentGuest(),
  });
  addImage(h.store, 'tiny', join(root, 'tiny.ext4'));
  return h;
}

function forwardsOver(h: VmHarness, directAddress?: () => string): ForwardService {
  return createForwardService({
    vms: h.service,
    vmsDir: h.deps.vmsDir,
    log: pino({ level: 'silent' }),
    autoScanMs: 100,
    directAddress,
  });
}

const specs = (...s: string[]) => s.map(parseForwardSpec);

describe('vm forward through the real agent', () => {
  let h: VmHarness;
  let fwd: ForwardService;
  let stateDir: string;

  beforeAll(async () => {
    stateDir = join(root, `s${n++}`);
    h = harness(stateDir);
    fwd = forwardsOver(h);
    await h.service.create({ name: 'web', image: 'tiny' });
    await guestServer('echo', 7000);
  });

  afterAll(async () => {
    await fwd?.close();
    await h?.discard();
  });

  afterEach(async () => {
    for (const f of fwd.list(h.service.get('web').id).forwards)
      await fwd.remove('web', [f.hostPort]).catch(() => {});
  });

  it('relays a connection both ways with a half-close, and marks the VM used', async () => {
    const before = h.service.get('web').lastTouchedAt;
    const { forwards } = await fwd.add('web', specs('0:7000'));
    expect(forwards).toEqual([
      {
        hostAddress: '127.0.0.1',
        hostPort: expect.any(Number),
        guestPort: 7000,
        auto: false,
        connections: 0,
      },
    ]);
    const port = forwards[0]!.hostPort;
    // The client ends its side first; the echo still comes back, then the server's end.
    const r = await guard(exchange(port, Buffer.from('hello through the agent')), 'echo');
    expect(r).toEqual({ data: Buffer.from('hello through the agent') });
    expect(h.service.get('web').lastTouchedAt > before).toBe(true);
    // Written down for a daemon restart.
    expect(existsSync(vmPaths(h.deps.vmsDir, h.service.get('web').id).forwards)).toBe(true);
  });

  it('serves 50 connections at once', async () => {
    const { forwards } = await fwd.add('web', specs('0:7000'));
    const port = forwards[0]!.hostPort;
    const payloads = Array.from({ length: 50 }, (_, i) => randomBytes(16 * 1024 + i * 997));
    const results = await guard(Promise.all(payloads.map((p) => exchange(port, p))), '50 connections');
    results.forEach((r, i) => {
      expect(r.error).toBeUndefined();
      expect(r.data.equals(payloads[i]!)).toBe(true);
    });
    await waitUntil(() => fwd.list(h.service.get('web').id).forwards[0]!.connections === 0);
  });

  it('carries 100 MB intact (sha256 of what went out and what came back)', async () => {
    const { forwards } = await fwd.add('web', specs('0:7000'));
    const block = randomBytes(MiB);
    const sent = createHash('sha256');
    async function* source() {
      for (let i = 0; i < 100; i++) {
        const chunk = Buffer.from(block);
        chunk.writeUInt32BE(i, 0); // no two MiB alike
        sent.update(chunk);
        yield chunk;
      }
    }
    const r = await guard(exchange(forwards[0]!.hostPort, source), '100 MB', 300_000);
    expect(r.error).toBeUndefined();
    expect(r.data.length).toBe(100 * MiB);
    expect(createHash('sha256').update(r.data).digest('hex')).toBe(sent.digest('hex'));
  }, 600_000);

  it('resets the client when nothing listens on the guest port (no hang)', async () => {
    const { forwards } = await fwd.add('web', specs('0:7999'));
    const r = await guard(exchange(forwards[0]!.hostPort, Buffer.from('anyone?')), 'nothing listening');
    expect(r).toEqual({ data: Buffer.alloc(0), error: 'ECONNRESET' });
  });

  it('resets the client when the guest server dies mid-stream', async () => {
    const server = await guestServer('stall', 7001);
    const { forwards } = await fwd.add('web', specs('0:7001'));
    let sentBytes = 0;
    async function* forever() {
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      for (;;) {
        sentBytes += chunk.length;
        // Killed once its buffers hold data it never read: the kernel answers with a reset.
        if (sentBytes === 4 * MiB) server.child.kill('SIGKILL');
        yield chunk;
      }
    }
    const r = await guard(exchange(forwards[0]!.hostPort, forever), 'server killed');
    expect(['ECONNRESET', 'EPIPE']).toContain(r.error);
  });

  it('a guest server that stops reading holds back its own connection only', async () => {
    const server = await guestServer('stall', 7004);
    const { forwards } = await fwd.add('web', specs('0:7004', '0:7000'));
    const [stalled, echo] = [7004, 7000].map((g) => forwards.find((f) => f.guestPort === g)!.hostPort);
    // Fill every buffer on the way to the stalled server: the client's writes stop being taken.
    const sock = connect({ port: stalled!, host: '127.0.0.1' });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const chunk = Buffer.alloc(256 * 1024, 1);
    for (let i = 0; i < 64 && sock.write(chunk); i++) {}
    await new Promise((r) => setTimeout(r, 1000));
    // The same VM's agent connection still carries other forwards and exec.
    expect(await guard(exchange(echo!, Buffer.from('still here')), 'echo beside a stall')).toEqual({
      data: Buffer.from('still here'),
    });
    const out: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => out.push(d));
    const r = await guard(
      h.service.exec('web', { argv: ['echo', 'exec beside a stall'] }, { stdout: sink, stderr: sink }),
      'exec beside a stall',
    );
    expect(r.exitCode).toBe(0);
    expect(Buffer.concat(out).toString()).toBe('exec beside a stall\n');
    sock.destroy();
    server.child.kill('SIGKILL');
  });

  it("resets the guest's end when the host client resets", async () => {
    const server = await guestServer('report', 7002);
    const { forwards } = await fwd.add('web', specs('0:7002'));
    const sock: Socket = connect({ port: forwards[0]!.hostPort, host: '127.0.0.1' });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.write('some bytes');
    await waitUntil(() => fwd.list(h.service.get('web').id).forwards[0]!.connections === 1);
    await new Promise((r) => setTimeout(r, 200)); // the guest end is open
    sock.resetAndDestroy();
    await guard(
      waitUntil(() => server.output().includes('error ECONNRESET'), 30_000),
      'the guest server to see the reset',
    );
    expect(server.output()).not.toContain('end');
  });

  it('refuses a host port in use, a non-running VM, and removes by host port', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const busy = (taken.address() as { port: number }).port;
    try {
      // All or nothing: the free one of the two is not kept either.
      await expect(fwd.add('web', specs('0:7000', `${busy}:7000`))).rejects.toMatchObject({
        code: 'already_exists',
      });
      expect(fwd.list(h.service.get('web').id).forwards).toEqual([]);
    } finally {
      taken.close();
    }
    await expect(fwd.remove('web', [1])).rejects.toMatchObject({ code: 'not_found' });
    expect(() => parseForwardSpec('8080')).toThrow(/HOST_PORT:GUEST_PORT/);
    expect(() => parseForwardSpec('1.2.3:80:80')).toThrow(/not an IP address/);
    expect(parseForwardSpec('[::1]:8080:80')).toEqual({ hostAddress: '::1', hostPort: 8080, guestPort: 80 });
  });

  it('--auto forwards the ports the guest listens on, and drops them when it stops listening', async () => {
    const server = await guestServer('echo', 7003);
    const { forwards } = await fwd.setAuto('web', true);
    const auto = forwards.find((f) => f.guestPort === 7003);
    expect(auto).toMatchObject({ hostAddress: '127.0.0.1', auto: true });
    // The same port on the host when it is free (it is: nothing else of this test uses 7003).
    expect(auto?.hostPort).toBe(7003);
    const r = await guard(exchange(auto!.hostPort, Buffer.from('auto')), 'auto echo');
    expect(r).toEqual({ data: Buffer.from('auto') });
    server.child.kill('SIGKILL');
    const id = h.service.get('web').id;
    await guard(
      waitUntil(() => !fwd.list(id).forwards.some((f) => f.guestPort === 7003), 30_000),
      'the auto forward to go',
    );
    expect(await listenable(7003)).toBe(true);
    await fwd.setAuto('web', false);
    expect(fwd.list(id)).toEqual({ auto: false, forwards: [] });
  });
});

describe('forwards and the VM lifecycle', () => {
  it('are gone when the VM stops (host port freed) and come back after a daemon restart', async () => {
    const stateDir = join(root, `s${n++}`);
    let h = harness(stateDir);
    let fwd = forwardsOver(h);
    try {
      await h.service.create({ name: 'life', image: 'tiny' });
      const vmId = h.service.get('life').id;
      await guestServer('echo', 7100);
      const blocker = createServer();
      const { forwards } = await fwd.add('life', specs('0:7100', '0:7100'));
      const [a, b] = forwards.map((f) => f.hostPort) as [number, number];

      // The daemon stops (VMs keep running) and a new one adopts the VM: the forwards listen again.
      await fwd.close();
      await h.close();
      // Meanwhile something else took one of the two ports: that one is reported, not silently lost.
      await new Promise<void>((r) => blocker.listen(b, '127.0.0.1', () => r()));
      h = harness(stateDir);
      const report = await h.service.reconcile();
      expect(report.adopted).toEqual(['life']);
      fwd = forwardsOver(h);
      await fwd.restore();
      const restored = fwd.list(vmId).forwards;
      expect(restored.find((f) => f.hostPort === a)).toMatchObject({ guestPort: 7100 });
      expect(restored.find((f) => f.hostPort === a)?.error).toBeUndefined();
      expect(restored.find((f) => f.hostPort === b)?.error).toMatch(/not restored.*in use/);
      blocker.close();
      expect(await guard(exchange(a, Buffer.from('after restart')), 'restored echo')).toEqual({
        data: Buffer.from('after restart'),
      });

      // A connection open while the VM stops is reset; the forward goes and its port is free again.
      const open = connect({ port: a, host: '127.0.0.1' });
      const closed = new Promise<string | undefined>((resolve) => {
        let code: string | undefined;
        open.on('error', (e: NodeJS.ErrnoException) => {
          code = e.code;
        });
        open.on('close', () => resolve(code));
      });
      await new Promise((r) => open.once('connect', r));
      await waitUntil(() => fwd.list(vmId).forwards.some((f) => f.connections === 1));
      await h.service.stop('life');
      expect(await guard(closed, 'the open connection to close')).toBe('ECONNRESET');
      expect(fwd.list(vmId)).toEqual({ auto: false, forwards: [] });
      expect(await listenable(a)).toBe(true);
      expect(existsSync(vmPaths(h.deps.vmsDir, vmId).forwards)).toBe(false);
      await expect(fwd.add('life', specs('0:7100'))).rejects.toMatchObject({ code: 'not_running' });
    } finally {
      await fwd.close();
      await h.discard();
    }
  }, 120_000);

  it('attaches the forwards of a create when the VM runs, and releases them when it fails', async () => {
    const stateDir = join(root, `s${n++}`);
    const h = harness(stateDir);
    const fwd = forwardsOver(h);
    try {
      await guestServer('echo', 7200);
      const reservation = await fwd.reserve(specs('0:7200'));
      const vm = await h.service.create({ name: 'born' }, { afterStart: (v) => reservation.attach(v.id) });
      reservation.release();
      const [f] = fwd.list(vm.id).forwards;
      expect(f).toMatchObject({ guestPort: 7200, auto: false });
      expect(await guard(exchange(f!.hostPort, Buffer.from('from birth')), 'create --forward')).toEqual({
        data: Buffer.from('from birth'),
      });
      // A create that fails releases what it reserved.
      const doomed = await fwd.reserve(specs('17201:7200'));
      expect(await listenable(17201)).toBe(false);
      await expect(h.service.create({ name: 'x', image: 'no-such-image' })).rejects.toThrow();
      doomed.release();
      expect(await listenable(17201)).toBe(true);
    } finally {
      await fwd.close();
      await h.discard();
    }
  }, 120_000);
});

describe('forwards through a hostile agent', () => {
  it.each(['huge', 'endless'] as const)(
    'a %s answer to connect resets the client and leaves the service working',
    async (mode) => {
      const stateDir = join(root, `s${n++}`);
      const wrapper = join(root, `hostile-${mode}.sh`);
      writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${HOSTILE_AGENT} ok ok ${mode} "$@"\n`);
      chmodSync(wrapper, 0o755);
      const h = harness(stateDir, wrapper);
      const fwd = forwardsOver(h);
      try {
        await h.service.create({ name: `hostile-${mode}`, image: 'tiny' });
        const { forwards } = await fwd.add(`hostile-${mode}`, specs('0:80'));
        const rssBefore = process.memoryUsage().rss;
        if (mode === 'huge') {
          // A 4 GiB frame header: the agent connection is dropped, the client reset.
          const r = await guard(exchange(forwards[0]!.hostPort, Buffer.from('x')), 'hostile huge');
          expect(r.error).toBe('ECONNRESET');
        } else {
          // Endless data to a client that never reads: held back by flow control, not buffered.
          const sock = connect({ port: forwards[0]!.hostPort, host: '127.0.0.1' });
          sock.on('error', () => {});
          sock.pause();
          await new Promise((r) => sock.once('connect', r));
          await new Promise((r) => setTimeout(r, 2000));
          expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * MiB);
          sock.destroy();
        }
        // The service still answers and forwards again (a new agent connection).
        expect(fwd.list(h.service.get(`hostile-${mode}`).id).forwards).toHaveLength(1);
      } finally {
        await fwd.close();
        await h.discard();
      }
    },
    60_000,
  );
});

/**
 * The "guest's own address" as the daemon reaches it over the bridge, in this file: the host's loopback,
 * where the servers below stand for a guest server bound to 0.0.0.0 (a real guest's eth0 address is not
 * reachable from this process, whose namespace does not hold the bridge). A server bound to the guest's
 * 127.0.0.1 is the one in the namespace (guestServer), reachable only through the agent.
 */
const DIRECT_SERVER = `const net=require('net');const [mode]=process.argv.slice(1);let open=0;
const s=net.createServer({allowHalfOpen:true},c=>{open++;console.log('conn '+open);c.on('error',()=>{});
c.on('close',()=>{open--;console.log('closed '+open);});
if(mode==='echo')c.pipe(c);else if(mode==='reset')c.once('data',()=>c.resetAndDestroy());else c.pause();
}).listen(0,'127.0.0.1',()=>console.log('listening '+s.address().port));`;

async function directServer(mode: 'echo' | 'reset' | 'stall') {
  const child = runner.spawn([process.execPath, '-e', DIRECT_SERVER, mode], { pipe: true });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitUntil(() => /listening \d+/.test(out), 20_000);
  const port = Number(/listening (\d+)/.exec(out)?.[1]);
  return { child, port, output: () => out };
}

describe('vm forward straight to the guest when the daemon can route to it', () => {
  let h: VmHarness;
  let fwd: ForwardService;
  /** Forwards guest port `port` from a free host port; the host port. */
  const forward = async (port: number) => {
    const { forwards } = await fwd.add('direct', specs(`0:${port}`));
    return forwards.find((f) => f.guestPort === port)!.hostPort;
  };

  beforeAll(async () => {
    h = harness(join(root, `s${n++}`));
    fwd = forwardsOver(h, () => '127.0.0.1');
    await h.service.create({ name: 'direct', image: 'tiny' });
  });

  afterAll(async () => {
    await fwd?.close();
    await h?.discard();
  });

  afterEach(async () => {
    for (const f of fwd.list(h.service.get('direct').id).forwards)
      await fwd.remove('direct', [f.hostPort]).catch(() => {});
  });

  it('a server on the guest address goes direct; one on the guest loopback goes through the agent', async () => {
    const direct = await directServer('echo');
    // Nothing listens on this port in the guest's namespace: through the agent it would be reset.
    const viaDirect = await forward(direct.port);
    const r1 = await guard(exchange(viaDirect, Buffer.from('straight over the bridge')), 'direct echo');
    expect(r1).toEqual({ data: Buffer.from('straight over the bridge') });
    expect(direct.output()).toContain('conn 1');

    // Loopback-only in the guest: the direct connect is refused (nothing on the guest address), the agent's
    // connect stream reaches it. The host's own loopback must not have it, or this would prove nothing.
    const guestPort = 7300;
    expect(await listenable(guestPort)).toBe(true);
    await guestServer('echo', guestPort);
    const viaAgent = await forward(guestPort);
    const payloads = Array.from({ length: 5 }, (_, i) => randomBytes(64 * 1024 + i));
    const results = await guard(Promise.all(payloads.map((p) => exchange(viaAgent, p))), 'agent echo');
    results.forEach((r, i) => {
      expect(r.error).toBeUndefined();
      expect(r.data.equals(payloads[i]!)).toBe(true);
    });

    // Both ways leave nothing open: the relayed connections end, on the host and at the direct server.
    const id = h.service.get('direct').id;
    await waitUntil(() => fwd.list(id).forwards.every((f) => f.connections === 0), 30_000);
    await waitUntil(() => direct.output().trimEnd().endsWith('closed 0'), 30_000);
    await fwd.remove('direct', [viaDirect, viaAgent]);
    expect(await listenable(viaDirect)).toBe(true);
    expect(await listenable(viaAgent)).toBe(true);
  });

  it('a direct server that accepts then resets gives the client a reset, not a hang', async () => {
    const server = await directServer('reset');
    const port = await forward(server.port);
    const r = await guard(exchange(port, Buffer.from('then a reset')), 'direct reset');
    expect(r.error).toBe('ECONNRESET');
    await waitUntil(
      () => fwd.list(h.service.get('direct').id).forwards.every((f) => f.connections === 0),
      30_000,
    );
    await fwd.remove('direct', [port]);
    expect(await listenable(port)).toBe(true);
  });

  it('a direct server that accepts then stalls holds its connection only; removing the forward frees all', async () => {
    const stall = await directServer('stall');
    const echo = await directServer('echo');
    const stalled = await forward(stall.port);
    const live = await forward(echo.port);
    const sock = connect({ port: stalled, host: '127.0.0.1' });
    let error: string | undefined;
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code;
    });
    const closed = new Promise((r) => sock.once('close', r));
    sock.write(Buffer.alloc(8 * MiB, 1)); // more than the socket buffers take: the stall holds it back
    await waitUntil(() => stall.output().includes('conn 1'), 30_000);
    // The other forward and the same host listener still serve new connections.
    expect(
      (await guard(exchange(live, Buffer.from('still here')), 'echo beside a stall')).data.toString(),
    ).toBe('still here');
    // The daemon's end toward the stalled server is open until the forward goes, then closed (the server,
    // paused, never reads that close: its own side stays, as any server's that ignores its peer).
    const established = async () =>
      (await runner.run(['ss', '-tnH', 'state', 'established', `( dport = :${stall.port} )`])).stdout.trim();
    expect(await established()).not.toBe('');
    await fwd.remove('direct', [stalled]);
    await guard(closed, 'the stalled client to be reset');
    expect(error).toBe('ECONNRESET');
    await waitUntil(async () => (await established()) === '', 30_000);
    expect(await listenable(stalled)).toBe(true);
    await fwd.remove('direct', [live]);
  });
});
