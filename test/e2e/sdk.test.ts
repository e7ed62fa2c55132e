/**
 * The SDK end to end: a real daemon, QEMU TCG guests (the Debian cloud kernel + banger's initramfs, a busybox
 * userland root: Alpine where ../shared has it, else the busybox rootfs), network in a namespace this file
 * creates. First the README's SDK script runs as it is, importing 'banger' (the built package) and starting
 * the daemon itself; then this process drives one VM through the SDK: exec with streamed output and stdin,
 * exit codes and signals, run's caps and timeout, files (binary, 10 MiB, modes, owners), abort mid-exec
 * (the guest process is killed), typed errors; and `await using` leaves no VM when its block throws.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Banger, BangerError, type Vm } from '../../src/sdk/index.js';
import { type BangerInstance, REPO_ROOT, waitUntil } from '../fixtures/banger-instance.js';
import {
  createGuestInstance,
  registerGuestImage,
  requireGuestHost,
  teardownGuestInstance,
} from '../fixtures/guest-instance.js';
import { buildGuestRoot, type GuestRootSource, guestRootSource } from '../fixtures/guest-root.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();
const runner = fx.runner;

await requireGuestHost(runner);

/** The README's SDK block, exactly as the README shows it. */
function readmeExample(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /<!-- sdk-readme-example[^>]*-->\n```ts\n([\s\S]*?)```/.exec(readme);
  if (!m?.[1]) throw new Error('README.md has no sdk-readme-example block');
  return m[1];
}

/** A guard against a hang, not a timing assertion. */
function guard<T>(p: Promise<T>, what: string, ms = 120_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (a hang)`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function errorOf(p: Promise<unknown>): Promise<BangerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BangerError);
  return err as BangerError;
}

describe('the SDK under QEMU TCG', () => {
  let inst: BangerInstance;
  let root: GuestRootSource;
  let banger: Banger;
  let vm: Vm;
  const vmsDir = () => join(inst.home, 'state', 'vms');

  /** The guest's processes whose command line contains `needle` (busybox ps). */
  const guestProcs = async (needle: string) => {
    const r = await vm.run(['ps', '-o', 'pid,args']);
    return r.stdout.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -o'));
  };

  beforeAll(async () => {
    const g = await createGuestInstance(fx, 'sdk');
    inst = g.inst;
    root = await guestRootSource();
    registerGuestImage(g, 'alpine', await buildGuestRoot(runner, g.work), {
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=from-image'],
    });
    banger = new Banger({ socketPath: inst.socketPath });
  });

  afterAll(async () => {
    if (vm) await vm.delete().catch(() => {});
    await teardownGuestInstance(fx, inst);
  });

  it("runs the README's script as it is: it starts the daemon, prints the release, leaves no VM", async () => {
    const dir = mkdtempSync(join(REPO_ROOT, 'test', '.sdk-readme-'));
    try {
      // Inside the package, so `import 'banger'` resolves through package.json `exports` to dist/.
      const script = join(dir, 'demo.mts');
      writeFileSync(script, readmeExample());
      const r = await execa(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [script], {
        env: { ...process.env, ...inst.env },
        reject: false,
        timeout: 280_000,
      });
      const lines = r.stdout.split('\n');
      if (root.flavour === 'alpine') {
        expect(r.exitCode, r.stderr).toBe(0);
        expect(lines[0]).toBe(root.versionId);
      } else {
        // The busybox root has no /etc/alpine-release: the script prints cat's complaint and goes on.
        expect(lines[0]).toContain('alpine-release');
      }
      expect(lines.slice(1)).toEqual(['HELLO', '{ exitCode: 3, signal: null }', 'hi']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await banger.connect()).pid).toBe(inst.daemonPid());
    expect(await banger.vms.list()).toEqual([]);
    expect(await processesNaming(vmsDir())).toEqual([]);
  });

  it('runs a VM and streams a command with stdin, env and cwd', async () => {
    const stages: string[] = [];
    vm = await banger.vms.run({ image: 'alpine', name: 'sdk-main', onProgress: (e) => stages.push(e.kind) });
    expect(vm.info.state).toBe('running');
    expect(stages.length).toBeGreaterThan(0);
    expect((await banger.vms.get('sdk-main')).id).toBe(vm.id);
    expect((await banger.vms.list()).map((v) => v.name)).toEqual(['sdk-main']);

    const p = vm.exec(['sh', '-c', 'read a; echo "got:$a $GREETING $X $(pwd)"; echo oops >&2; cat'], {
      stdin: 'pipe',
      env: { X: 'x1' },
      cwd: '/tmp',
    });
    const out: string[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d.toString()));
    const err: Buffer[] = [];
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.stdin?.write('hello\n');
    // The first line arrives while the command still runs (it waits for the rest of stdin): streamed.
    await guard(
      waitUntil(() => out.join('').includes('got:'), 60_000),
      'first line',
    );
    p.stdin?.end(Buffer.from([0, 1, 255]));
    expect(await guard(p.wait(), 'exec')).toEqual({ exitCode: 0, signal: null });
    expect(Buffer.from(out.join('')).toString()).toContain('got:hello from-image x1 /tmp\n');
    expect(Buffer.concat(err).toString()).toBe('oops\n');
  });

  it('reports exit codes and signals, and kills on request', async () => {
    expect((await vm.run('exit 7')).exitCode).toBe(7);
    const term = vm.exec(['sh', '-c', 'echo up; exec sleep 4311']);
    await new Promise((r) => term.stdout.once('data', r));
    term.kill('SIGTERM');
    expect(await guard(term.wait(), 'TERM')).toEqual({ exitCode: null, signal: 'SIGTERM' });
    const killed = vm.exec(['sh', '-c', 'echo up; exec sleep 4312']);
    await new Promise((r) => killed.stdout.once('data', r));
    killed.kill('KILL');
    expect(await guard(killed.wait(), 'KILL')).toEqual({ exitCode: null, signal: 'SIGKILL' });
    await guard(
      waitUntil(async () => (await guestProcs('sleep 4312')).length === 0, 60_000),
      'kill',
    );
    expect(() => vm.exec(['true']).kill('STOP')).toThrow(BangerError);
  });

  it('caps run output, flags it, and kills a command past its timeout', async () => {
    const r = await vm.run('head -c 300000 /dev/zero | tr "\\0" a; echo done >&2', { maxBytes: 1000 });
    expect(r).toMatchObject({ exitCode: 0, stdoutTruncated: true, stderrTruncated: false, stderr: 'done\n' });
    expect(r.stdout).toBe('a'.repeat(1000));
    const slow = await vm.run('echo started; sleep 4313', { timeoutMs: 3000 });
    expect(slow).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGKILL', stdout: 'started\n' });
    await guard(
      waitUntil(async () => (await guestProcs('sleep 4313')).length === 0, 60_000),
      'timeout kill',
    );
  });

  it('aborts a command mid-exec: the guest process is killed, wait() rejects with cancelled', async () => {
    const ac = new AbortController();
    const p = vm.exec(['sh', '-c', 'echo up; exec sleep 4314'], { signal: ac.signal });
    await new Promise((r) => p.stdout.once('data', r));
    expect(await guestProcs('sleep 4314')).toHaveLength(1);
    ac.abort();
    expect((await errorOf(p.wait())).code).toBe('cancelled');
    await guard(
      waitUntil(async () => (await guestProcs('sleep 4314')).length === 0, 60_000),
      'abort kill',
    );
  });

  it('round-trips files: binary, 10 MiB, modes and owners, and lists them', async () => {
    const bin = Buffer.from([0, 255, 10, 13, 0, 128, 1]);
    await vm.files.write('/tmp/bin.dat', bin, { mode: 0o750, owner: { uid: 1234, gid: 99 } });
    expect(await vm.files.read('/tmp/bin.dat')).toEqual(bin);
    const big = randomBytes(10 * 1024 * 1024);
    await guard(vm.files.write('/root/big.bin', big), 'write 10 MiB', 280_000);
    const sum = (await vm.run(['sha256sum', '/root/big.bin'])).stdout.split(' ')[0];
    expect(sum).toBe(createHash('sha256').update(big).digest('hex'));
    expect((await guard(vm.files.read('/root/big.bin'), 'read 10 MiB', 280_000)).equals(big)).toBe(true);
    const { entries, truncated } = await vm.files.list('/tmp');
    expect(truncated).toBe(false);
    expect(entries.find((e) => e.name === 'bin.dat')).toMatchObject({
      type: 'file',
      size: 7,
      mode: 0o750,
      uid: 1234,
      gid: 99,
    });
    expect((await vm.run(['stat', '-c', '%a %u %g', '/tmp/bin.dat'])).stdout).toBe('750 1234 99\n');
  });

  it('types its errors: code, hint and operation id', async () => {
    const missing = await errorOf(banger.vms.get('no-such-vm'));
    expect(missing.code).toBe('not_found');
    expect(missing.opId).toEqual(expect.any(String));
    expect((await errorOf(vm.files.read('/no/such/file'))).code).toBe('not_found');
    expect((await errorOf(vm.files.read('relative/path'))).code).toBe('bad_request');
    expect((await errorOf(vm.files.write('/tmp/x', Buffer.alloc(10 * 1024 * 1024 + 1)))).code).toBe(
      'bad_request',
    );
    const stopped = await banger.vms.create({ image: 'alpine', name: 'sdk-off', noStart: true });
    try {
      const e = await errorOf(stopped.run('true'));
      expect(e.code).toBe('not_running');
      expect(e.hint).toContain('banger vm start sdk-off');
    } finally {
      await stopped.delete();
    }
    const offline = new Banger({ socketPath: join(inst.home, 'nothing.sock') });
    expect((await errorOf(offline.vms.list())).code).toBe('operation_failed');
  });

  it('stats, ports and a forward of the running VM', async () => {
    const stats = await vm.stats();
    expect(stats.name).toBe('sdk-main');
    expect(stats.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(Array.isArray(await vm.ports())).toBe(true);
    const forwards = await vm.forward({ guestPort: 4315, hostPort: 0 });
    expect(forwards).toHaveLength(1);
    expect((await vm.forwards()).map((f) => f.guestPort)).toEqual([4315]);
    await vm.unforward(forwards[0]!.hostPort);
    expect(await vm.forwards()).toEqual([]);
    await vm.delete();
    expect(await banger.vms.list()).toEqual([]);
  });

  it('runs examples/junit: a test suite in a fresh VM, its JUnit report collected, no VM left', async () => {
    const out = join(inst.home, 'junit.xml');
    const r = await execa(
      join(REPO_ROOT, 'node_modules', '.bin', 'tsx'),
      [
        join(REPO_ROOT, 'examples', 'junit', 'run-suite.mts'),
        join(REPO_ROOT, 'examples', 'junit', 'suite'),
        out,
      ],
      { env: { ...process.env, ...inst.env }, reject: false, timeout: 280_000 },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('2 tests, 0 failed');
    const xml = readFileSync(out, 'utf8');
    expect(xml).toContain('<testsuite name="suite" tests="2" failures="0">');
    expect(xml).toContain('<testcase classname="suite" name="arithmetic"/>');
    expect(await banger.vms.list()).toEqual([]);
  });

  it('await using deletes the VM when its block throws mid-exec', async () => {
    const ac = new AbortController();
    let name = '';
    const block = async () => {
      await using box = await banger.vms.run({ image: 'alpine' });
      name = box.name;
      const p = box.exec(['sh', '-c', 'echo up; exec sleep 4316'], { signal: ac.signal });
      await new Promise((r) => p.stdout.once('data', r));
      ac.abort();
      await p.wait(); // rejects: the block ends by a throw
    };
    expect((await errorOf(block())).code).toBe('cancelled');
    expect(name).not.toBe('');
    expect(await banger.vms.list()).toEqual([]);
    expect(await processesNaming(vmsDir())).toEqual([]);
  });
});
