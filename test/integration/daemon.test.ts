import { existsSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bangerVersion } from '../../src/config/index.js';
import { createRpcClient } from '../../src/rpc/index.js';
import { type BangerInstance, createInstance, processAlive, waitUntil } from '../fixtures/banger-instance.js';

/** Sends one raw line and returns the first response line. */
function rawCall(socketPath: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    sock.on('connect', () => sock.write(`${line}\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.destroy();
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    sock.on('error', reject);
  });
}

describe('bangerd and the CLI', () => {
  let inst: BangerInstance;
  afterEach(async () => {
    await inst?.cleanup();
  });

  it('auto-starts the daemon on first use and answers over the socket', async () => {
    inst = createInstance();
    const r = await inst.cli(['vm', 'list', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(r.stderr).toContain('starting bangerd');
    const pid = inst.daemonPid();
    expect(pid && processAlive(pid)).toBe(true);
    // socket 0600 in a 0700 directory
    expect(statSync(inst.socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(`${inst.home}/run`).mode & 0o777).toBe(0o700);
    // the second call reuses it
    const again = await inst.cli(['image', 'list', '--json']);
    expect(again.stderr).not.toContain('starting bangerd');
    expect(inst.daemonPid()).toBe(pid);
    const status = await inst.cli(['daemon', 'status', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid, version: bangerVersion() });
  });

  it('rejects bad params with bad_request naming the field, and unknown methods', async () => {
    inst = createInstance();
    await inst.cli(['vm', 'list']);
    const client = createRpcClient(inst.socketPath, bangerVersion());
    await expect(client.call('vm.list', { bogus: 1 } as never)).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringContaining('"bogus"'),
      opId: expect.stringMatching(/^[0-9a-f]{12}$/),
    });
    const unknown = await rawCall(
      inst.socketPath,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'vm.explode',
        params: {},
        meta: { version: bangerVersion() },
      }),
    );
    expect(unknown).toMatchObject({ id: 7, error: { code: -32601, data: { code: 'unknown_method' } } });
    const garbage = await rawCall(inst.socketPath, '{not json');
    expect(garbage).toMatchObject({ error: { data: { code: 'bad_request' } } });
  });

  it('refuses calls from another version with bad_version, and the CLI replaces an old daemon', async () => {
    inst = createInstance();
    const old = inst.daemon({ BANGER_FAKE_VERSION: '0.0.1-old' });
    await waitUntil(() => existsSync(inst.socketPath) && inst.daemonPid() !== undefined);
    const oldPid = inst.daemonPid()!;
    const client = createRpcClient(inst.socketPath, bangerVersion());
    await expect(client.call('vm.list', {})).rejects.toMatchObject({ code: 'bad_version' });
    const r = await inst.cli(['vm', 'list', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('restarting bangerd (running 0.0.1-old');
    await old;
    expect(processAlive(oldPid)).toBe(false);
    expect((await client.call('ping', {})).version).toBe(bangerVersion());
  });

  it('refuses to start a second daemon while one answers', async () => {
    inst = createInstance();
    await inst.cli(['vm', 'list']);
    const second = await inst.daemon();
    expect(second.exitCode).toBe(3);
    expect(second.stderr).toMatch(/another bangerd is already running/);
    expect(processAlive(inst.daemonPid()!)).toBe(true);
  });

  it('after kill -9 of the daemon, the next CLI call starts a new one over the stale socket', async () => {
    inst = createInstance();
    await inst.cli(['vm', 'list']);
    const pid = inst.daemonPid()!;
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => !processAlive(pid));
    expect(existsSync(inst.socketPath)).toBe(true); // stale
    const r = await inst.cli(['vm', 'list', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const newPid = inst.daemonPid()!;
    expect(newPid).not.toBe(pid);
    expect(processAlive(newPid)).toBe(true);
  });

  it('stops gracefully on `daemon stop` and on SIGTERM, removing socket and pid file', async () => {
    inst = createInstance();
    await inst.cli(['vm', 'list']);
    const stop = await inst.cli(['daemon', 'stop']);
    expect(stop.stdout).toContain('bangerd stopped');
    expect(existsSync(inst.socketPath)).toBe(false);
    const status = await inst.cli(['daemon', 'status']);
    expect(status.exitCode).toBe(3);
    await inst.cli(['vm', 'list']);
    const pid = inst.daemonPid()!;
    process.kill(pid, 'SIGTERM');
    await waitUntil(() => !processAlive(pid));
    expect(existsSync(inst.socketPath)).toBe(false);
  });

  it('prints errors as `banger: <message>` with a hint and exits 1', async () => {
    inst = createInstance();
    const r = await inst.cli(['vm', 'lst']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^banger: unknown command 'lst'/);
    expect(r.stderr).toContain('Did you mean');
  });

  it('names the bad config key, and the daemon refuses to start with it', async () => {
    inst = createInstance();
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(`${inst.home}/config`, { recursive: true });
    writeFileSync(`${inst.home}/config/config.toml`, 'vmm = "qemu"\ntap_pool_sise = 3\n');
    const r = await inst.cli(['vm', 'list']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('unknown key "tap_pool_sise"');
    const doctor = await inst.cli(['doctor']);
    expect(doctor.exitCode).toBe(1);
    expect(doctor.stdout).toMatch(/FAIL\tconfig/);
  });
});
