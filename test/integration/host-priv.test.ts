import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createInProcessPrivOps, processStartTime, teardownAll } from '../../src/host/index.js';
import { createNetnsFixture } from '../fixtures/netns.js';

const fx = createNetnsFixture();
const children: ChildProcess[] = [];

function startSleeper(): { child: ChildProcess; pid: number; startTime: number } {
  const child = fx.runner.spawn(['sleep', '600']);
  children.push(child);
  const pid = child.pid!;
  return { child, pid, startTime: processStartTime(pid)! };
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await fx.cleanup();
  await fx.assertNoLeftovers();
});

describe('signalProcess', () => {
  it('sends an allow-listed signal to the process named by pid and start time', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { child, pid, startTime } = startSleeper();
    const exited = once(child, 'exit');
    expect(await priv.signalProcess({ pid, startTime, signal: 'sigterm' })).toBe('signalled');
    expect((await exited)[1]).toBe('SIGTERM');
    expect(await priv.signalProcess({ pid, startTime, signal: 'TERM' })).toBe('gone');
  });

  it('leaves a process alone when its start time does not match (a recycled pid)', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { child, pid, startTime } = startSleeper();
    expect(await priv.signalProcess({ pid, startTime: startTime + 1, signal: 'KILL' })).toBe('gone');
    expect(child.exitCode).toBeNull();
    expect(processStartTime(pid)).toBe(startTime);
  });

  it('refuses STOP and CONT without touching the process', async () => {
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir: await fx.tempDir() });
    const { pid, startTime } = startSleeper();
    for (const signal of ['STOP', 'SIGCONT', '19']) {
      await expect(priv.signalProcess({ pid, startTime, signal })).rejects.toMatchObject({
        code: 'bad_request',
      });
    }
    // Not stopped: STOP would have turned it to T; running or sleeping is all we know.
    const state = /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    expect(state).not.toBe('T');
  });

  it('teardown of a process identity kills it and waits for it to exit; a second teardown is a no-op', async () => {
    const stateDir = await fx.tempDir();
    const priv = createInProcessPrivOps({ runner: fx.runner, stateDir });
    const { child, pid, startTime } = startSleeper();
    const exited = once(child, 'exit');
    await teardownAll({ priv, stateDir }, [{ kind: 'process', pid, startTime }]);
    expect((await exited)[1]).toBe('SIGKILL');
    await teardownAll({ priv, stateDir }, [{ kind: 'process', pid, startTime }]);
  });
});
