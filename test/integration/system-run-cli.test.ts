/**
 * `banger system run --owner nobody` through the built CLI, in an isolated BANGER_HOME: bangerd-root runs
 * as root, bangerd as uid 65534 pointed at the helper's socket, the owner's CLI reaches the daemon, and
 * SIGINT (Ctrl-C) stops both and leaves no socket. If the daemon dies, the helper is stopped too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { processUids } from '../../src/host/proc.js';
import { REPO_ROOT } from '../fixtures/banger-instance.js';

const BANGER = join(REPO_ROOT, 'bin', 'banger');
const runs: { child: ChildProcess; home: string }[] = [];

afterEach(async () => {
  for (const { child, home } of runs.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(home, { recursive: true, force: true });
  }
});

/** Starts `system run` in a fresh BANGER_HOME and waits for the line naming both pids. */
async function startRun() {
  const home = mkdtempSync(join(tmpdir(), 'bgr-sr-'));
  chmodSync(home, 0o755); // the owner must reach its dirs inside
  mkdirSync(join(home, 'config'));
  const dnsPort = 43000 + Math.floor(Math.random() * 2000);
  writeFileSync(
    join(home, 'config', 'config.toml'),
    `tap_pool_size = 0\ndns_addr = "127.0.0.1:${dnsPort}"\n`,
  );
  const child = spawn(process.execPath, [BANGER, 'system', 'run', '--owner', 'nobody'], {
    env: { ...process.env, BANGER_HOME: home, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  runs.push({ child, home });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c));
  const started = /bangerd-root pid (\d+) \(root\) on (\S+); bangerd pid (\d+)/;
  for (let i = 0; !started.test(log); i++) {
    if (child.exitCode !== null || i > 1500) throw new Error(`system run did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 40));
  }
  const m = started.exec(log)!;
  const daemonSocket = join(home, 'run', 'bangerd.sock');
  for (let i = 0; !existsSync(daemonSocket); i++) {
    if (child.exitCode !== null || i > 1500) throw new Error(`bangerd never listened: ${log}`);
    await new Promise((r) => setTimeout(r, 40));
  }
  return {
    child,
    home,
    helperPid: Number(m[1]),
    helperSocket: m[2]!,
    daemonPid: Number(m[3]),
    daemonSocket,
    log: () => log,
  };
}

const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

describe('banger system run', () => {
  it('runs the helper as root and the daemon as the owner, and Ctrl-C stops both', async () => {
    const run = await startRun();
    expect(processUids(run.helperPid)).toEqual({ real: 0, effective: 0 });
    expect(processUids(run.daemonPid)).toEqual({ real: 65534, effective: 65534 });
    const environ = readFileSync(`/proc/${run.daemonPid}/environ`, 'utf8').split('\0');
    expect(environ).toContain(`BANGER_PRIV_HELPER_SOCKET=${run.helperSocket}`);
    expect(run.helperSocket).toBe(join(run.home, 'run-root', 'bangerd-root.sock'));

    const list = await execa(
      asNobody[0]!,
      [...asNobody.slice(1), process.execPath, BANGER, 'vm', 'list', '--json'],
      {
        env: { BANGER_HOME: run.home, NO_COLOR: '1', PATH: process.env.PATH ?? '' },
        reject: false,
        timeout: 60_000,
      },
    );
    expect(list.exitCode, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
    expect(Number(readFileSync(join(run.home, 'run', 'bangerd.pid'), 'utf8').trim())).toBe(run.daemonPid);

    // system status sees both processes answer, their versions, the owner the helper serves, and the uids.
    const status = await execa(process.execPath, [BANGER, 'system', 'status', '--json'], {
      env: { ...process.env, BANGER_HOME: run.home, NO_COLOR: '1' },
      reject: false,
      timeout: 60_000,
    });
    expect(status.exitCode, status.stderr).toBe(0);
    const st = JSON.parse(status.stdout) as {
      systemd: boolean;
      healthy: boolean;
      helper: { socket: string; version?: string; ownerUid?: number };
      daemon: { version?: string; pid?: number };
      processes: { pid: number; program: string; uid: number }[];
    };
    expect(st.healthy).toBe(true);
    expect(st.systemd).toBe(false);
    expect(st.helper).toMatchObject({ socket: run.helperSocket, ownerUid: 65534 });
    expect(st.helper.version).toBe(st.daemon.version);
    expect(st.daemon.pid).toBe(run.daemonPid);
    expect(st.processes).toContainEqual({ pid: run.helperPid, program: 'bangerd-root', uid: 0 });
    expect(st.processes).toContainEqual({ pid: run.daemonPid, program: 'bangerd', uid: 65534 });

    const exited = once(run.child, 'exit');
    run.child.kill('SIGINT');
    expect((await exited)[0]).toBe(0);
    expect(processUids(run.helperPid)).toBeUndefined();
    expect(processUids(run.daemonPid)).toBeUndefined();
    expect(existsSync(run.helperSocket)).toBe(false);
    expect(existsSync(run.daemonSocket)).toBe(false);
    expect(run.log()).toContain('bangerd-root: stopping');
  }, 180_000);

  it('stops the helper and exits 1 when the daemon dies on its own', async () => {
    const run = await startRun();
    const exited = once(run.child, 'exit');
    process.kill(run.daemonPid, 'SIGKILL');
    expect((await exited)[0]).toBe(1);
    expect(run.log()).toContain('a process exited on its own');
    expect(processUids(run.helperPid)).toBeUndefined();
    expect(existsSync(run.helperSocket)).toBe(false);
  }, 180_000);

  it('bangerd --system refuses to run as root, saying what to run instead', async () => {
    const home = mkdtempSync(join(tmpdir(), 'bgr-sr-'));
    try {
      const r = await execa(process.execPath, [join(REPO_ROOT, 'bin', 'bangerd'), '--system'], {
        env: { ...process.env, BANGER_HOME: home },
        reject: false,
        timeout: 60_000,
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('bangerd --system refuses to run as root');
      expect(r.stderr).toContain('banger system run --owner USER');
      expect(existsSync(join(home, 'state', 'banger.db'))).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses to run unless root, and refuses root as the owner', async () => {
    const notRoot = await execa(
      asNobody[0]!,
      [...asNobody.slice(1), process.execPath, BANGER, 'system', 'run', '--owner', 'nobody'],
      {
        env: { BANGER_HOME: '/nonexistent-bgr', PATH: process.env.PATH ?? '' },
        reject: false,
      },
    );
    expect(notRoot.exitCode).toBe(1);
    expect(notRoot.stderr).toContain('banger system run must run as root');
    const rootOwner = await execa(process.execPath, [BANGER, 'system', 'run', '--owner', 'root'], {
      env: { ...process.env, BANGER_HOME: '/nonexistent-bgr' },
      reject: false,
    });
    expect(rootOwner.exitCode).toBe(1);
    expect(rootOwner.stderr).toContain('--owner must not be root');
    expect(existsSync('/nonexistent-bgr')).toBe(false);
  }, 60_000);
});
