import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createInProcessPrivOps, processStartTime, teardownAll } from '../../src/host/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';

const fx = createNetnsFixture();
const children: ChildProcess[] = [];

/**
 * A sleeping process of ours whose argv holds `marker` whole: the proof argument a signal must match
 * (node, since `sleep` refuses an argument that is not a number).
 */
function startSleeper(marker = `/banger-test/${process.pid}/run/qmp.sock`, prefix: string[] = []) {
  const child = fx.runner.spawn([...prefix, process.execPath, '-e', 'setTimeout(() => {}, 600000)', marker]);
  children.push(child);
  const pid = child.pid!;
  return { child, pid, startTime: processStartTime(pid)!, arg: marker, exe: realpathSync(process.execPath) };
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe('signalProcess', () => {
  it('sends an allow-listed signal to the process named by pid, start time, executable and argument', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { child, ...proof } = startSleeper();
    const exited = once(child, 'exit');
    expect(await priv.signalProcess({ ...proof, signal: 'sigterm' })).toEqual({ outcome: 'signalled' });
    expect((await exited)[1]).toBe('SIGTERM');
    expect(await priv.signalProcess({ ...proof, signal: 'TERM' })).toEqual({ outcome: 'gone' });
  });

  it('leaves a process alone when its start time does not match (a recycled pid)', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { child, ...proof } = startSleeper();
    expect(await priv.signalProcess({ ...proof, startTime: proof.startTime + 1, signal: 'KILL' })).toEqual({
      outcome: 'gone',
    });
    expect(child.exitCode).toBeNull();
    expect(processStartTime(proof.pid)).toBe(proof.startTime);
  });

  it('refuses a live process with the right pid and start time but another argv, executable or owner', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { child, ...proof } = startSleeper();
    const refusals = [
      // The argument must be whole: a substring of it, or a longer one, is another argument.
      { ...proof, arg: proof.arg.slice(0, -4) },
      { ...proof, arg: `${proof.arg}x` },
      { ...proof, arg: '600x' },
      { ...proof, exe: '/usr/bin/qemu-system-x86_64' },
    ];
    for (const req of refusals) {
      const res = await priv.signalProcess({ ...req, signal: 'KILL' });
      expect(res.outcome, JSON.stringify(req)).toBe('refused');
    }
    expect(child.exitCode).toBeNull();
    expect(processStartTime(proof.pid)).toBe(proof.startTime);
  });

  it('refuses a process of another uid (65534) even when its argv and exe match', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { child, ...proof } = startSleeper(undefined, [
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
    ]);
    await waitForExe(proof.pid, proof.exe);
    const res = await priv.signalProcess({ ...proof, signal: 'KILL' });
    expect(res).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/uid 65534/) });
    expect(child.exitCode).toBeNull();
  });

  it('refuses STOP and CONT without touching the process', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { child: _child, ...proof } = startSleeper();
    for (const signal of ['STOP', 'SIGCONT', '19']) {
      await expect(priv.signalProcess({ ...proof, signal })).rejects.toMatchObject({
        code: 'bad_request',
      });
    }
    // Not stopped: STOP would have turned it to T; running or sleeping is all we know.
    const state = /\) (\S)/.exec(readFileSync(`/proc/${proof.pid}/stat`, 'utf8'))?.[1];
    expect(state).not.toBe('T');
  });

  it('teardown of a process identity kills it and waits for it to exit; a second teardown is a no-op', async () => {
    const stateDir = await fx.tempDir();
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir });
    const { child, ...proof } = startSleeper();
    const exited = once(child, 'exit');
    await teardownAll({ priv }, [{ kind: 'process', ...proof }]);
    expect((await exited)[1]).toBe('SIGKILL');
    await teardownAll({ priv }, [{ kind: 'process', ...proof }]);
  });
});

/** setpriv execs its program in place: wait until the pid runs it, not setpriv. */
async function waitForExe(pid: number, exe: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`) === exe) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`pid ${pid} never ran ${exe}`);
}
