/**
 * `banger vm forward` end to end: the CLI, a real daemon, QEMU TCG booting the Debian cloud kernel +
 * banger's initramfs, a busybox root with the agent (built by the suite, no ../shared needed), the VM's
 * network inside a namespace this file creates, the agent over virtio-serial. The host's clients (curl,
 * node sockets) run in the host's namespace and reach the guest's busybox servers only through the forward.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBinaryPath } from '../../src/guest/index.js';
import { buildBusyboxAgentRoot } from '../fixtures/agent-root.js';
import { type BangerInstance, createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';
import { registerImage, writeInstanceConfig } from '../fixtures/guest-root.js';
import { ensureTestKernel, type TestKernel } from '../fixtures/kernel.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();
const runner = fx.runner;
const MiB = 1024 * 1024;

for (const tool of [
  'qemu-system-x86_64',
  'mkfs.ext4',
  'apt-get',
  'dpkg-deb',
  'depmod',
  'tar',
  'nft',
  'curl',
]) {
  const r = await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
  if (r.exitCode !== 0) throw new Error(`${tool} is not installed (see docs/testing.md)`);
}
if (!existsSync(agentBinaryPath())) await runner.run(['make', '-s', '-C', join(REPO_ROOT, 'agent')]);
if (!existsSync(join(REPO_ROOT, 'dist'))) throw new Error('the CLI is not built: npm run build');

/** A guard against a hang, not a timing assertion. */
function guard<T>(p: Promise<T>, what: string, ms = 120_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms (a hang)`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Sends what source yields, half-closes, reads until the far end closes; the error code if it reset. */
function exchange(
  port: number,
  source: () => Iterable<Buffer>,
  opts: { halfClose?: boolean } = {},
): Promise<{ data: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let error: string | undefined;
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    sock.on('close', () => resolve({ data: Buffer.concat(chunks), ...(error && { error }) }));
    sock.on('connect', () => {
      const it = source()[Symbol.iterator]();
      const pump = () => {
        for (;;) {
          const next = it.next();
          // Without a half-close our end goes after the server's (busybox httpd resets a client that
          // half-closes before it answered, reached directly too).
          if (next.done)
            return void (opts.halfClose === false ? sock.once('end', () => sock.end()) : sock.end());
          if (sock.destroyed) return;
          if (!sock.write(next.value)) return void sock.once('drain', pump);
        }
      };
      pump();
    });
  });
}

const listenable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

describe('banger vm forward under QEMU TCG', () => {
  let inst: BangerInstance;
  let kernel: TestKernel;
  const cli = (args: string[]) => inst.cli(args);
  const vmsDir = () => join(inst.home, 'state', 'vms');
  const exec = async (script: string) => {
    const r = await cli(['vm', 'exec', 'web', '--', 'sh', '-c', script]);
    expect(r.exitCode, r.stderr).toBe(0);
    return r.stdout;
  };

  /**
   * Until the guest listens on port (a server started in the background takes a moment under TCG). Read
   * from the guest's /proc/net/tcp{,6}, not `vm ports`: its HTTP probe connects to every port, which would
   * use up the one-shot `nc -l` servers these cases start.
   */
  const listening = async (port: number) => {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    for (let i = 0; i < 120; i++) {
      const r = await cli([
        'vm',
        'exec',
        'web',
        '--',
        'grep',
        '-q',
        `:${hex} [0-9A-F]*:0000 0A`,
        '/proc/net/tcp',
        '/proc/net/tcp6',
      ]);
      if (r.exitCode === 0) return;
      await new Promise((res) => setTimeout(res, 500));
    }
    throw new Error(`the guest never listened on ${port}`);
  };

  beforeAll(async () => {
    kernel = await ensureTestKernel();
    const ns = await fx.createNetns('fwd');
    await fx.addClosedUplink(ns);
    const work = await fx.tempDir();
    const rootfs = await buildBusyboxAgentRoot(runner, work);
    inst = createInstance();
    await mkdir(join(inst.home, 'config'), { recursive: true });
    await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
    writeInstanceConfig(inst.home, ns, fx.id.slice(6));
    registerImage(inst.home, {
      name: 'bbox',
      rootfsPath: rootfs,
      kernelPath: kernel.kernelPath,
      initrdPath: kernel.initrdPath,
    });
  }, 600_000);

  afterAll(async () => {
    if (inst) {
      const list = await inst.cli(['vm', 'list', '--json']);
      for (const vm of JSON.parse(list.stdout || '[]') as { id: string }[])
        await inst.cli(['vm', 'delete', vm.id]);
      for (const p of await processesNaming(vmsDir())) process.kill(p.pid, 'SIGKILL');
      await inst.cli(['daemon', 'stop']).catch(() => {});
      await inst.cleanup();
    }
    await fx.cleanup();
    await fx.assertNoLeftovers();
  });

  it('curl on the host reaches the guest httpd after vm forward NAME 18080:8080', async () => {
    // --forward at create: nothing listens on 7999 yet, so its connections are reset, not left hanging.
    const made = await cli(['vm', 'create', '--name', 'web', '--image', 'bbox', '--forward', '17999:7999']);
    expect(made.exitCode, made.stderr).toBe(0);
    await exec('mkdir -p /www && echo hello-from-the-guest > /www/index.html && httpd -p 8080 -h /www');
    await listening(8080);

    const fwd = await cli(['vm', 'forward', 'web', '18080:8080']);
    expect(fwd.exitCode, fwd.stderr).toBe(0);
    expect(fwd.stdout).toMatch(/127\.0\.0\.1:18080\s+8080\s+manual/);
    const curl = await runner.run(['curl', '-sS', '--max-time', '60', 'http://127.0.0.1:18080/']);
    expect(curl.stdout).toBe('hello-from-the-guest\n');

    const refused = await guard(
      exchange(17999, () => [Buffer.from('anyone?')]),
      'nothing listening',
    );
    expect(refused).toEqual({ data: Buffer.alloc(0), error: 'ECONNRESET' });

    const shown = await cli(['vm', 'show', 'web']);
    expect(shown.stdout).toMatch(/forwards:[\s\S]*127\.0\.0\.1:18080\s+8080/);
    const listed = JSON.parse((await cli(['vm', 'forward', '--list', 'web', '--json'])).stdout);
    expect(listed).toMatchObject({ name: 'web', auto: false });
    expect(listed.forwards.map((f: { hostPort: number }) => f.hostPort).sort()).toEqual([17999, 18080]);
  }, 300_000);

  it('50 concurrent connections through the forward to busybox httpd', async () => {
    // busybox `nc -ll` resets concurrent connections even when reached directly; httpd is a real server
    // (the half-close is covered by the 100 MB test below).
    const sums = await exec(
      'for i in $(seq 0 49); do head -c $((4096 + i * 101)) /dev/urandom > /www/f$i; done; cd /www && sha256sum f*',
    );
    const want = new Map(sums.split('\n').map((l) => [l.split(/\s+/)[1], l.split(/\s+/)[0]] as const));
    const get = (i: number) =>
      exchange(18080, () => [Buffer.from(`GET /f${i} HTTP/1.0\r\nHost: web\r\n\r\n`)], {
        halfClose: false,
      }).then((r) => ({
        ...r,
        body: r.data.subarray(r.data.indexOf('\r\n\r\n') + 4),
      }));
    const results = await guard(
      Promise.all(Array.from({ length: 50 }, (_, i) => get(i))),
      '50 connections',
      300_000,
    );
    const why = () =>
      readFileSync(join(inst.home, 'state', 'bangerd.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('forward'))
        .slice(-5)
        .join('\n');
    results.forEach((r, i) => {
      expect(r.error, r.error && why()).toBeUndefined();
      expect(r.data.toString('latin1')).toMatch(/^HTTP\/1\.[01] 200/);
      expect(createHash('sha256').update(r.body).digest('hex')).toBe(want.get(`f${i}`));
    });
  }, 400_000);

  it('100 MB reach the guest intact (sha256 computed in the guest, sent back after the half-close)', async () => {
    // The accepted socket is sha256sum's stdin and stdout: the sum comes back once our end is closed.
    await exec('nc -l -p 7001 -e sha256sum >/dev/null 2>&1 &');
    await listening(7001);
    expect((await cli(['vm', 'forward', 'web', '17001:7001'])).exitCode).toBe(0);
    const block = randomBytes(MiB);
    const hash = createHash('sha256');
    function* source() {
      for (let i = 0; i < 100; i++) {
        const chunk = Buffer.from(block);
        chunk.writeUInt32BE(i, 0);
        hash.update(chunk);
        yield chunk;
      }
    }
    const r = await guard(exchange(17001, source), '100 MB', 900_000);
    expect(r.error).toBeUndefined();
    expect(r.data.toString().split(' ')[0]).toBe(hash.digest('hex'));
  }, 1_000_000);

  it('a guest server killed mid-stream resets the host client', async () => {
    // The accepted socket becomes sleep's stdin, which nobody reads: buffers fill, then it is killed.
    await exec('nc -l -p 7002 -e sleep 600 >/dev/null 2>&1 &');
    await listening(7002);
    expect((await cli(['vm', 'forward', 'web', '17002:7002'])).exitCode).toBe(0);
    let sent = 0;
    let killed = false;
    function* forever() {
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      for (;;) {
        sent += chunk.length;
        if (sent >= 2 * MiB && !killed) {
          killed = true;
          void cli(['vm', 'exec', 'web', '--', 'killall', '-9', 'sleep']);
        }
        yield chunk;
      }
    }
    const r = await guard(exchange(17002, forever), 'server killed', 300_000);
    expect(['ECONNRESET', 'EPIPE']).toContain(r.error);
  }, 400_000);

  it('vm forward --rm, then vm stop: the forwards are gone and their host ports free', async () => {
    const rm = await cli(['vm', 'forward', '--rm', 'web', '17999']);
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect(await listenable(17999)).toBe(true);
    const missing = await cli(['vm', 'forward', '--rm', 'web', '17999']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no forward on host port 17999');

    expect((await cli(['vm', 'stop', 'web'])).exitCode).toBe(0);
    const listed = JSON.parse((await cli(['vm', 'forward', 'web', '--json'])).stdout);
    expect(listed).toEqual({ name: 'web', auto: false, forwards: [] });
    for (const port of [18080, 17001, 17002]) expect(await listenable(port)).toBe(true);
    const curl = await runner.run(['curl', '-sS', '--max-time', '30', 'http://127.0.0.1:18080/'], {
      allowFailure: true,
    });
    expect(curl.exitCode).not.toBe(0);
    const again = await cli(['vm', 'forward', 'web', '18080:8080']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain('not running');
  }, 300_000);
});
