/**
 * bangerd-root as a real root process on a temp socket, serving uid 65534 (nobody) as its owner. The owner
 * drives real operations through the remote PrivOps client in a namespace the test makes; hostile requests
 * (another uid, paths out of the state dir or through a symlink, foreign names, a signal to a process that
 * is not a VMM of the owner's, oversized and malformed frames, an unknown op or version) are each refused
 * with a reason, and the helper answers a good request after every one of them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readlinkSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRIV_MAX_FRAME_BYTES } from '../../src/host/priv/protocol.js';
import { createRemotePrivOps } from '../../src/host/priv/remote.js';
import { processStartTime } from '../../src/host/proc.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { type RunningPrivHelper, startPrivHelper } from '../fixtures/priv-helper.js';

const REPO = join(import.meta.dirname, '..', '..');
const OWNER = 65534;
const STRANGER = 65533;
const asUid = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];

const fx = createNetnsFixture();
let helper: RunningPrivHelper | undefined;
let socketPath: string;
let stateDir: string;
let ns: string;
const children: ChildProcess[] = [];

/** Runs a command to completion and returns its stdout (the caller asserts on it). */
async function output(argv: string[]): Promise<string> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  child.stderr!.on('data', (c: Buffer) => (err += c));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}: ${err}`);
  return out;
}

/** PrivOps calls made by the owner uid through the real remote client, in a child process. */
async function asOwner(
  calls: [string, unknown][],
): Promise<{ ok?: unknown; error?: string; message?: string }[]> {
  const argv = [...asUid(OWNER), process.execPath, '--import', 'tsx', 'test/fixtures/priv-client.ts'];
  return JSON.parse(await output([...argv, socketPath, JSON.stringify(calls)]));
}

/** One raw request line from `uid` (a plain-JS client, no loader needed). */
async function rawAs(uid: number, line: string): Promise<Record<string, unknown>> {
  const argv = [...asUid(uid), process.execPath, join(REPO, 'test/fixtures/priv-raw-client.mjs')];
  return JSON.parse(await output([...argv, socketPath, line]));
}

/** Raw bytes from this (root) process: what a client that does not speak the protocol sends. */
async function raw(bytes: string | Buffer): Promise<Record<string, unknown>> {
  const socket = connect(socketPath);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  socket.write(bytes);
  await once(socket, 'close');
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const request = (op: string, args: object, v = 1) => JSON.stringify({ v, op, args });

/** The helper still serves: a good request from the owner gets its answer. */
async function stillServes(): Promise<void> {
  const res = await rawAs(OWNER, request('linkMark', {}));
  expect(res).toMatchObject({ ok: true, result: expect.stringMatching(/^banger:[0-9a-f]{32}$/) });
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}; helper log:\n${helper!.log()}`);
}

beforeAll(async () => {
  ns = await fx.createNetns('ph');
  const root = await fx.tempDir();
  chmodSync(root, 0o711); // the owner must traverse it to reach the socket
  stateDir = join(root, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  chownSync(stateDir, OWNER, OWNER);
  helper = await startPrivHelper({ owner: 'nobody', dir: root, stateDir });
  socketPath = helper.socketPath;
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (helper) expect(await helper.stop()).toEqual({ exitCode: 0, socketLeft: false });
  await fx.cleanup();
  await fx.assertNoLeftovers();
}, 120_000);

describe('bangerd-root', () => {
  it('makes its socket 0600 for the owner in a root-owned 0711 directory', () => {
    const sock = statSync(socketPath);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o600);
    expect(sock.uid).toBe(OWNER);
    const dir = statSync(join(socketPath, '..'));
    expect(dir.mode & 0o777).toBe(0o711);
    expect(dir.uid).toBe(0);
  });

  it('says hello with its version, protocol and owner', async () => {
    const [hello] = await asOwner([['hello', {}]]);
    expect(hello).toEqual({
      ok: { version: expect.stringMatching(/^\d+\.\d+\.\d+/), protocol: 1, ownerUid: 65534 },
    });
  }, 60_000);

  it('creates and deletes a bridge and an owner tap and sets a sysctl in a namespace, for the owner', async () => {
    const bridge = 'br-fc-ph';
    const tap = 'tap-fc-4242';
    const res = await asOwner([
      ['ensureBridge', { name: bridge, ip: '172.30.77.1', prefix: 24, netns: ns }],
      ['createTap', { name: tap, bridge, owner: OWNER, netns: ns }],
      ['setIpForward', { enabled: true, netns: ns }],
    ]);
    expect(res).toEqual([{ ok: null }, { ok: null }, { ok: null }]);
    const links = JSON.parse(await fx.exec(ns, ['ip', '-j', '-d', 'link', 'show'])) as {
      ifname: string;
      master?: string;
      ifalias?: string;
      linkinfo?: { info_data?: { user?: string | number } };
    }[];
    const tapLink = links.find((l) => l.ifname === tap);
    expect(tapLink?.master).toBe(bridge);
    expect(tapLink?.ifalias).toMatch(/^banger:[0-9a-f]{32}$/);
    expect(String(tapLink?.linkinfo?.info_data?.user)).toMatch(/^(65534|nobody)$/);
    expect(links.find((l) => l.ifname === bridge)?.ifalias).toBe(tapLink?.ifalias);
    expect(
      (await fx.exec(ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', bridge])).includes('172.30.77.1/24'),
    ).toBe(true);
    expect((await fx.exec(ns, ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim()).toBe('1');

    const removed = await asOwner([
      ['deleteTap', { name: tap, netns: ns }],
      ['deleteBridge', { name: bridge, netns: ns }],
      ['setIpForward', { enabled: false, netns: ns }],
      ['deleteTap', { name: tap, netns: ns }],
    ]);
    expect(removed.slice(0, 2)).toEqual([{ ok: 'deleted' }, { ok: 'deleted' }]);
    // Forwarding is only ever turned on by the helper: a request to turn it off is refused, and it stays on.
    expect(removed[2]).toMatchObject({ error: 'bad_request' });
    expect(removed[2]!.message).toMatch(/refusing to turn net\.ipv4\.ip_forward off/);
    expect(removed[3]).toEqual({ ok: 'absent' });
    const left = JSON.parse(await fx.exec(ns, ['ip', '-j', 'link', 'show'])) as { ifname: string }[];
    expect(left.map((l) => l.ifname)).toEqual(['lo']);
    expect((await fx.exec(ns, ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim()).toBe('1');
    expect(helper!.log()).toMatch(/op=setIpForward refused: refusing to turn net\.ipv4\.ip_forward off/);
    expect(helper!.log()).toMatch(/uid=65534 pid=\d+ op=createTap ok/);
    expect(helper!.log()).toMatch(/uid=65534 pid=\d+ op=deleteBridge ok/);
  }, 120_000);

  it('attaches and detaches a loop device only over a file in the state dir, with no symlink on the way', async () => {
    const file = join(stateDir, 'disk.img');
    writeFileSync(file, Buffer.alloc(1024 * 1024));
    const ops = createRemotePrivOps({ socketPath });
    const { device, backingFile } = await ops.attachLoop({ file, readOnly: true });
    expect(device).toMatch(/^\/dev\/loop\d+$/);
    expect(backingFile).toBe(realpathSync(file));
    await ops.detachLoop({ device, backingFile });
    const loops = await output(['losetup', '-J', '-l']);
    expect(loops.includes(file)).toBe(false);

    await expect(ops.attachLoop({ file: '/etc/shadow', readOnly: true })).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringMatching(/outside the owner's state dir/),
    });
    await expect(ops.attachLoop({ file: `${stateDir}/../x.img`, readOnly: true })).rejects.toMatchObject({
      message: expect.stringMatching(/not an absolute normal path/),
    });
    // A symlink the owner planted in its own tree: refused even though the target is inside the tree too.
    mkdirSync(join(stateDir, 'real'));
    writeFileSync(join(stateDir, 'real', 'd.img'), Buffer.alloc(4096));
    symlinkSync(join(stateDir, 'real'), join(stateDir, 'via'));
    symlinkSync('/etc/passwd', join(stateDir, 'passwd.img'));
    for (const f of [join(stateDir, 'via', 'd.img'), join(stateDir, 'passwd.img')]) {
      await expect(ops.attachLoop({ file: f, readOnly: true })).rejects.toMatchObject({
        code: 'bad_request',
        message: expect.stringMatching(/is a symlink/),
      });
    }
    expect(helper!.log()).toMatch(/op=attachLoop refused: refusing path .*is a symlink/);
    expect(await output(['losetup', '-J', '-l'])).not.toContain(stateDir);
    await stillServes();
  }, 120_000);

  it('stacks a device-mapper snapshot only on loop devices over files in the owner state dir', async () => {
    // A loop device root attached over a file outside the state dir: the owner must not reach it.
    const outside = join(await fx.tempDir(), 'secret.img');
    writeFileSync(outside, Buffer.alloc(1024 * 1024));
    const foreign = (await output(['losetup', '-f', '--show', '-r', outside])).trim();
    const inside = join(stateDir, 'cow.img');
    writeFileSync(inside, Buffer.alloc(1024 * 1024));
    const ops = createRemotePrivOps({ socketPath });
    const cow = await ops.attachLoop({ file: inside, readOnly: false });
    try {
      for (const [origin, bad] of [
        [foreign, foreign],
        ['/dev/loop999999', '/dev/loop999999'],
      ] as const) {
        await expect(
          ops.createDmSnapshot({ name: 'banger-ph-test', origin, cow: cow.device, sectors: 2048 }),
        ).rejects.toMatchObject({
          code: 'bad_request',
          message: expect.stringContaining(
            `refusing "${bad}": not a loop device over a file in the owner's state dir`,
          ),
        });
      }
      expect(existsSync('/dev/mapper/banger-ph-test')).toBe(false);
    } finally {
      await ops.detachLoop(cow);
      await output(['losetup', '-d', foreign]);
    }
    await stillServes();
  }, 120_000);

  it('refuses names outside banger pattern and taps for another uid', async () => {
    const res = await asOwner([
      ['ensureBridge', { name: 'docker0', ip: '172.30.78.1', prefix: 24, netns: ns }],
      ['createTap', { name: 'eth0', bridge: 'br-fc', netns: ns }],
      ['createTap', { name: 'tap-fc-0001', bridge: 'br-fc', owner: 0, netns: ns }],
      ['deleteBridge', { name: 'br-fc;reboot', netns: ns }],
      ['removeDm', { name: 'vg0-root' }],
      ['setIpForward', { enabled: true, netns: '../../proc/1/ns/net' }],
    ]);
    expect(res.map((r) => r.error)).toEqual(Array(6).fill('bad_request'));
    expect(res[0]!.message).toMatch(/not a banger bridge/);
    expect(res[1]!.message).toMatch(/not a banger tap/);
    expect(res[2]!.message).toMatch(/taps are made for the owner \(uid 65534\)/);
    expect(res[4]!.message).toMatch(/not a banger device/);
    expect(res[5]!.message).toMatch(/invalid network namespace/);
    const left = JSON.parse(await fx.exec(ns, ['ip', '-j', 'link', 'show'])) as { ifname: string }[];
    expect(left.map((l) => l.ifname)).toEqual(['lo']);
    await stillServes();
  }, 120_000);

  it('signals a VMM of the owner only, never a process it cannot prove is one', async () => {
    const marker = join(stateDir, 'vms', 'x', 'qmp.sock');
    const exe = realpathSync(process.execPath);
    const startSleeper = async (prefix: string[]) => {
      const argv = [...prefix, process.execPath, '-e', 'setTimeout(() => {}, 600000)', marker];
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      children.push(child);
      const pid = child.pid!;
      await waitFor(() => {
        try {
          return readlinkSync(`/proc/${pid}/exe`) === exe;
        } catch {
          return false;
        }
      }, `pid ${pid} to run node`);
      return { child, proof: { pid, startTime: processStartTime(pid)!, arg: marker, exe } };
    };
    // A process of root's with the very argv of a VMM: not the owner's, so not the helper's to signal.
    const rootOne = await startSleeper([]);
    const plainSleep = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(plainSleep);
    await waitFor(() => processStartTime(plainSleep.pid!) !== undefined, 'sleep');
    const ownerOne = await startSleeper(asUid(OWNER));
    const res = await asOwner([
      ['signalProcess', { ...rootOne.proof, signal: 'KILL' }],
      [
        'signalProcess',
        { pid: plainSleep.pid, startTime: processStartTime(plainSleep.pid!), arg: marker, signal: 'KILL' },
      ],
      ['signalProcess', { ...ownerOne.proof, arg: '/somewhere/else.sock', signal: 'KILL' }],
      ['signalProcess', { ...ownerOne.proof, signal: 'STOP' }],
      ['signalProcess', { ...ownerOne.proof, pid: 1, signal: 'KILL' }],
    ]);
    expect(res[0]).toEqual({ ok: { outcome: 'refused', reason: expect.stringMatching(/uid 0, not 65534/) } });
    expect(res[1]).toEqual({ ok: { outcome: 'refused', reason: expect.stringMatching(/uid 0, not 65534/) } });
    expect(res[2]).toEqual({
      ok: { outcome: 'refused', reason: expect.stringMatching(/argv has no argument/) },
    });
    expect(res[3]).toMatchObject({
      error: 'bad_request',
      message: expect.stringMatching(/refusing signal "STOP"/),
    });
    expect(res[4]).toMatchObject({ error: 'bad_request', message: expect.stringMatching(/invalid pid 1/) });
    expect(rootOne.child.exitCode).toBeNull();
    expect(plainSleep.exitCode).toBeNull();
    expect(ownerOne.child.exitCode).toBeNull();
    expect(helper!.log()).toMatch(/op=signalProcess refused: pid \d+ is not the recorded process/);

    const exited = once(ownerOne.child, 'exit');
    expect(await asOwner([['signalProcess', { ...ownerOne.proof, signal: 'TERM' }]])).toEqual([
      { ok: { outcome: 'signalled' } },
    ]);
    expect((await exited)[1]).toBe('SIGTERM');
  }, 120_000);

  it("the client sends a signal request's own fields: a recorded process identity (with its kind) is served", async () => {
    const marker = join(stateDir, 'vms', 'y', 'qmp.sock');
    const exe = realpathSync(process.execPath);
    const argv = [...asUid(OWNER), process.execPath, '-e', 'setTimeout(() => {}, 600000)', marker];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    children.push(child);
    const pid = child.pid!;
    await waitFor(() => {
      try {
        return readlinkSync(`/proc/${pid}/exe`) === exe;
      } catch {
        return false;
      }
    }, `pid ${pid} to run node`);
    // What teardown hands over: the stored identity, `kind` and all (the helper's schema knows no `kind`).
    const identity = { kind: 'process' as const, pid, startTime: processStartTime(pid)!, arg: marker, exe };
    const exited = once(child, 'exit');
    const ops = createRemotePrivOps({ socketPath });
    expect(await ops.signalProcess({ ...identity, signal: 'TERM' })).toEqual({ outcome: 'signalled' });
    expect((await exited)[1]).toBe('SIGTERM');
  }, 120_000);

  it('refuses a connection from a uid that is neither the owner nor root, at the socket mode and by SO_PEERCRED', async () => {
    // First the socket's mode keeps the stranger out before connect(2) completes.
    expect(await rawAs(STRANGER, request('linkMark', {}))).toEqual({ connectError: 'EACCES' });
    // With the mode opened up (a mistake, or a directory ACL), the peer's uid as the kernel recorded it
    // still keeps the stranger out.
    chmodSync(socketPath, 0o666);
    try {
      const res = await rawAs(STRANGER, request('linkMark', {}));
      expect(res).toMatchObject({
        ok: false,
        error: { code: 'unauthorized', message: 'uid 65533 may not use bangerd-root' },
      });
    } finally {
      chmodSync(socketPath, 0o600);
    }
    expect(helper!.log()).toMatch(/uid=65533 pid=\d+ refused: not the owner/);
    await stillServes();
  }, 60_000);

  it('drops a client that never finishes its request line, and keeps serving', async () => {
    const socket = connect(socketPath);
    socket.on('error', () => {});
    socket.write('{"v":1,"op":"linkMark"');
    await once(socket, 'close');
    expect(helper!.log()).toMatch(/uid=0 pid=\d+ refused: no whole request within 10000 ms/);
    await stillServes();
  }, 60_000);

  it('refuses malformed, oversized, unknown and wrong-version frames and keeps serving', async () => {
    const cases: [string | Buffer, string, RegExp][] = [
      ['{nope\n', 'bad_request', /^malformed JSON/],
      ['[1,2]\n', 'bad_request', /^malformed request/],
      [`${request('reboot', {})}\n`, 'unknown_method', /unknown operation "reboot"/],
      [
        `${request('linkMark', {}, 2)}\n`,
        'bad_version',
        /protocol version 2 is not supported \(this helper speaks 1\)/,
      ],
      [
        `${request('deleteTap', { name: 'tap-fc-0001', extra: 1 })}\n`,
        'bad_request',
        /invalid arguments for deleteTap/,
      ],
      [
        `${request('setIpForward', { enabled: 'yes' })}\n`,
        'bad_request',
        /invalid arguments for setIpForward/,
      ],
      [Buffer.alloc(PRIV_MAX_FRAME_BYTES + 10, 0x61), 'bad_request', /request larger than 65536 bytes/],
    ];
    for (const [bytes, code, message] of cases) {
      const res = await raw(bytes);
      expect(res, String(bytes).slice(0, 80)).toMatchObject({
        v: 1,
        ok: false,
        error: { code, message: expect.stringMatching(message) },
      });
    }
    expect(helper!.log()).toMatch(/refused: request larger than/);
    await stillServes();
  }, 60_000);
});
