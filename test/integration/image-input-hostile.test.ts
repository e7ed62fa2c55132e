import { watch } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { openInput } from '../../src/daemon/services/images/sources/input.js';
import { processExited, processStartTime } from '../../src/host/proc.js';
import { BangerError } from '../../src/model/errors.js';
import { type BangerInstance, createInstance, REPO_ROOT, waitUntil } from '../fixtures/banger-instance.js';

/** `banger ARGS` with a bound well under the test's own, so a wedged daemon fails the test, not the run. */
async function cli(inst: BangerInstance, args: string[], timeoutMs = 20_000) {
  const started = Date.now();
  const r = await execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], {
    env: inst.env,
    reject: false,
    timeout: timeoutMs,
  });
  return {
    stdout: r.stdout,
    stderr: r.stderr,
    exitCode: r.exitCode ?? -1,
    timedOut: r.timedOut,
    ms: Date.now() - started,
  };
}

// Real parts: the built CLI and daemon, real FIFOs and device nodes, real processes and signals.
describe('hostile import inputs (CLI -> daemon)', () => {
  let inst: BangerInstance | undefined;
  let dir: string | undefined;
  /** A daemon a test froze after its pid file went: cleanup() cannot find it by that file. */
  let frozenPid: number | undefined;
  afterEach(async () => {
    if (frozenPid) {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const)
        try {
          process.kill(frozenPid, signal);
        } catch {}
      frozenPid = undefined;
    }
    await inst?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
    inst = undefined;
    dir = undefined;
  });

  it('a FIFO with no writer, given five times, is refused at once each time; the daemon then lists and stops', async () => {
    inst = createInstance();
    const fifo = join(inst.home, 'no-writer.fifo');
    await execa('mkfifo', [fifo]);
    expect((await cli(inst, ['image', 'list'])).exitCode).toBe(0);
    const pid = inst.daemonPid() as number;
    const startTime = processStartTime(pid) as number;
    for (let i = 1; i <= 5; i++) {
      const r = await cli(inst, ['image', 'import', `wedge${i}`, fifo]);
      expect(r.timedOut, `import ${i} hung`).toBe(false);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`banger: ${fifo} is a FIFO; only a regular file is read as a tarball`);
      expect(r.stderr).toContain(`hint: pipe it through stdin: banger image import wedge${i} - < ${fifo}`);
    }
    const list = await cli(inst, ['image', 'list', '--json'], 5000);
    expect(list.timedOut).toBe(false);
    expect(JSON.parse(list.stdout)).toEqual([]);
    // `image show` reads a file: it answers only while the daemon's thread pool is free.
    const show = await cli(inst, ['image', 'show', 'nope'], 5000);
    expect(show.timedOut).toBe(false);
    expect(show.stderr).toContain('not found');
    const stop = await cli(inst, ['daemon', 'stop']);
    expect(stop.stdout).toBe('bangerd stopped');
    // Gone, or a zombie left for whoever reaps orphans here: either way it has exited.
    expect(processExited(pid, startTime)).toBe(true);
  }, 120_000);

  it('a character device (endless /dev/zero) and a directory are refused with what they are', async () => {
    inst = createInstance();
    const dev = await cli(inst, ['image', 'import', 'zero', '/dev/zero']);
    expect(dev.exitCode).toBe(1);
    expect(dev.stderr).toContain('/dev/zero is a character device; only a regular file is read as a tarball');
    const d = await cli(inst, ['image', 'import', 'dir', inst.home]);
    expect(d.stderr).toContain(`${inst.home} is a directory`);
    expect((await cli(inst, ['image', 'list', '--json'], 5000)).stdout).toBe('[]');
  }, 60_000);

  it('`daemon stop` never says "stopped" while the process lives: frozen after its pid file went, it fails', async () => {
    // The daemon removes its pid file as its last step; a process frozen right then (as a thread stuck in
    // open(2) used to hold it) is the case. Freezing it is a race with its exit, retried when lost.
    for (let attempt = 1; attempt <= 3; attempt++) {
      inst = createInstance();
      const runDir = join(inst.home, 'run');
      expect((await cli(inst, ['image', 'list'])).exitCode).toBe(0);
      const pid = inst.daemonPid() as number;
      const startTime = processStartTime(pid) as number;
      let frozen = false;
      const watcher = watch(runDir, (_event, name) => {
        if (name !== 'bangerd.pid' || frozen) return;
        try {
          process.kill(pid, 'SIGSTOP');
          frozen = true;
          frozenPid = pid;
        } catch {}
      });
      const stop = await cli(inst, ['daemon', 'stop', '--wait', '2']);
      watcher.close();
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      if (!frozen || !/\) T /.test(stat)) {
        await inst.cleanup();
        continue; // it exited before the signal landed
      }
      expect(stop.stdout).not.toContain('stopped');
      expect(stop.exitCode).toBe(1);
      expect(stop.stderr).toContain(
        `banger: bangerd (pid ${pid}) is still running 2 s after it was asked to stop`,
      );
      expect(stop.stderr).toContain(`kill ${pid}`);
      // Let it go: it finishes exiting, and `daemon stop` has nothing left to stop.
      process.kill(pid, 'SIGCONT');
      await waitUntil(() => processExited(pid, startTime));
      expect((await cli(inst, ['daemon', 'stop'])).stdout).toBe('bangerd is not running');
      return;
    }
    throw new Error('the daemon exited before SIGSTOP landed, three times');
  }, 120_000);
});

describe('openInput (the daemon side of an import input)', () => {
  let dir: string;
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("the CLI's stdin FIFO with no writer times out; five at once leave the thread pool free", async () => {
    dir = await mkdtemp(join(tmpdir(), 'banger-input-'));
    const fifos = [1, 2, 3, 4, 5].map((i) => join(dir, `stdin${i}`));
    for (const f of fifos) await execa('mkfifo', [f]);
    const opening = fifos.map((f) =>
      openInput(f, { stdin: true, name: 'stdin', pipeHint: '', readyTimeoutMs: 1500 }).then(
        () => undefined,
        (err: unknown) => err,
      ),
    );
    // While five wait for a writer, a file read (thread pool) still completes at once.
    const t0 = Date.now();
    await readFile(join(REPO_ROOT, 'package.json'));
    expect(Date.now() - t0).toBeLessThan(500);
    for (const err of await Promise.all(opening)) {
      expect(err).toBeInstanceOf(BangerError);
      expect((err as BangerError).message).toBe('nothing arrived on stdin within 1.5 s');
    }
  });

  it('a FIFO not declared as the stdin stream is refused after a non-blocking open', async () => {
    dir = await mkdtemp(join(tmpdir(), 'banger-input-'));
    const f = join(dir, 'swapped');
    await execa('mkfifo', [f]);
    const err = await openInput(f, { stdin: false, pipeHint: 'pipe it' }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'bad_request',
      message: `${f} is a FIFO; only a regular file is read as a tarball`,
    });
  });

  it('the stdin FIFO delivers what its writer sends, to the end', async () => {
    dir = await mkdtemp(join(tmpdir(), 'banger-input-'));
    const f = join(dir, 'stdin');
    await execa('mkfifo', [f]);
    const opened = openInput(f, { stdin: true, pipeHint: '' });
    const writer = execa('sh', ['-c', `sleep 0.2; printf hello > ${f}`]);
    const { stream, size } = await opened;
    expect(size).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    await writer;
    expect(Buffer.concat(chunks).toString()).toBe('hello');
  });
});
