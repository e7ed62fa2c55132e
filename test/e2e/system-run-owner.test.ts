/**
 * The privilege split end to end (issue 18): `banger system run --owner USER` as root inside a network
 * namespace this file creates, with a whole instance under its own BANGER_HOME; bangerd-root runs as root,
 * bangerd as an unprivileged user this file creates (and deletes), and that user's CLI drives a real QEMU
 * TCG guest: image import, `vm run --rm -- cmd` with its exit code, NAT to a peer namespace (the only
 * "outside" there is), `vm exec`, stop, delete, the daemon SIGKILLed and `system run` started again (the
 * VM left running is adopted), then Ctrl-C. Checked: the daemon's uid (from /proc), that no daemon process
 * runs as root, and that nothing is left: no tap, NAT rule, loop device, process or file outside
 * BANGER_HOME.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processUids } from '../../src/host/proc.js';
import { REPO_ROOT, waitUntil } from '../fixtures/banger-instance.js';
import { requireGuestHost } from '../fixtures/guest-instance.js';
import { guestRootSource, PRINT_VERSION_ID } from '../fixtures/guest-root.js';
import { ensureTestKernel } from '../fixtures/kernel.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();
const runner = fx.runner;
const BANGER = join(REPO_ROOT, 'bin', 'banger');

await requireGuestHost(runner, { tools: ['useradd', 'userdel', 'setpriv'] });

/** True when something accepts a connection on the unix socket. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

describe('banger system run with the daemon as an unprivileged owner', () => {
  const user = `bgrt${randomBytes(3).toString('hex')}`;
  let uid = 0;
  let gid = 0;
  let ns = '';
  let peer = '';
  let home = '';
  let run: { child: ChildProcess; log: () => string; daemonPid: number; helperPid: number } | undefined;
  let peerServer: ChildProcess | undefined;
  const peerHits: string[] = [];
  const token = randomBytes(4).toString('hex');
  let versionId = '';

  /** `banger ARGS` as the test user, inside the namespace (where the guests' addresses are reachable). */
  const asUser = async (args: string[], timeout = 600_000) => {
    const r = await execa(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'setpriv',
        `--reuid=${uid}`,
        `--regid=${gid}`,
        '--clear-groups',
        '--',
        process.execPath,
        BANGER,
        ...args,
      ],
      {
        env: { BANGER_HOME: home, NO_COLOR: '1', PATH: process.env.PATH ?? '', HOME: home },
        extendEnv: false,
        reject: false,
        timeout,
      },
    );
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  };

  /** Starts `system run` in the namespace and waits until the daemon answers the owner's CLI. */
  const startRun = async (tunMode = '666') => {
    // This host's /dev/net/tun is 0600 (root only) where Debian's udev makes it 0666, and the owner's QEMU
    // must open it: the instance gets a private mount namespace with a 0666 node over it (the host's node
    // is left alone).
    const tun = `mount -t tmpfs -o mode=755 banger-tun /dev/net && mknod -m ${tunMode} /dev/net/tun c 10 200`;
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `${tun} && exec "$0" "$@"`,
        process.execPath,
        BANGER,
        'system',
        'run',
        '--owner',
        user,
      ],
      { env: { ...process.env, BANGER_HOME: home, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr!.on('data', (c: Buffer) => (log += c));
    const started = /bangerd-root pid (\d+) \(root\) on \S+; bangerd pid (\d+)/;
    await waitUntil(() => started.test(log) || child.exitCode !== null, 120_000);
    const m = started.exec(log);
    if (!m) throw new Error(`system run did not start: ${log}`);
    // The socket a SIGKILLed daemon left stays on disk: wait until the new daemon answers on it.
    await waitUntil(
      async () => child.exitCode !== null || (await answers(join(home, 'run', 'bangerd.sock'))),
      120_000,
    );
    if (child.exitCode !== null) throw new Error(`system run exited: ${log}`);
    run = { child, log: () => log, helperPid: Number(m[1]), daemonPid: Number(m[2]) };
    return run;
  };

  const stopRun = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const r = run;
    run = undefined;
    if (!r || r.child.exitCode !== null || r.child.signalCode !== null) return undefined;
    const exited = once(r.child, 'exit');
    r.child.kill(signal);
    return (await exited)[0] as number | null;
  };

  /** Every process whose real or effective uid is the test user's. */
  const userProcesses = () =>
    readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number)
      .filter((pid) => {
        const ids = processUids(pid);
        return ids !== undefined && (ids.real === uid || ids.effective === uid);
      });

  /**
   * Every daemon of this instance (bin/bangerd with its BANGER_HOME) and its effective uid: there must be
   * one, the owner's. Other instances on the host (other test files) are not this test's business.
   */
  const instanceDaemons = () =>
    readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number)
      .flatMap((pid) => {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          if (!argv.some((a) => a.endsWith('/bin/bangerd'))) return [];
          const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
          if (!environ.includes(`BANGER_HOME=${home}`)) return [];
          return [{ pid, euid: processUids(pid)?.effective }];
        } catch {
          return []; // gone while we looked
        }
      });

  const taps = async () =>
    (JSON.parse(await fx.exec(ns, ['ip', '-j', 'link', 'show'])) as { ifname: string }[])
      .map((l) => l.ifname)
      .filter((n) => n.startsWith('tap-fc-'));

  beforeAll(async () => {
    for (const p of [process.execPath, join(REPO_ROOT, 'dist'), join(REPO_ROOT, 'node_modules', '.')]) {
      // Not traversable means the user cannot run banger from here: say so rather than chmod the host.
      const st = await execa('stat', ['-L', '-c', '%a', p]);
      const parts = p.split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) {
        const dir = `/${parts.slice(0, i).join('/')}`;
        const mode = Number.parseInt((await execa('stat', ['-L', '-c', '%a', dir])).stdout, 8);
        if ((mode & 0o005) === 0)
          throw new Error(
            `${dir} is not readable and traversable by other users (mode ${mode.toString(8)}): the test user cannot run ${p}`,
          );
      }
      expect(st.exitCode).toBe(0);
    }
    await runner.run([
      'useradd',
      '--system',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      user,
    ]);
    uid = Number((await runner.run(['id', '-u', user])).stdout.trim());
    gid = Number((await runner.run(['id', '-g', user])).stdout.trim());

    // The namespace of the whole instance; its uplink is a veth to a peer namespace, the "internet" that
    // NAT must reach (the peer has no route back to the guests' network: only masquerading works).
    ns = await fx.createNetns('own');
    peer = await fx.createNetns('peer');
    await fx.exec(ns, ['ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1', 'netns', peer]);
    await fx.exec(ns, ['ip', 'addr', 'add', '10.98.0.1/24', 'dev', 'up0']);
    await fx.exec(ns, ['ip', 'link', 'set', 'up0', 'up']);
    await fx.exec(ns, ['ip', 'route', 'add', 'default', 'via', '10.98.0.2']);
    await fx.exec(peer, ['ip', 'addr', 'add', '10.98.0.2/24', 'dev', 'up1']);
    await fx.exec(peer, ['ip', 'link', 'set', 'up1', 'up']);
    peerServer = spawn(
      'ip',
      [
        'netns',
        'exec',
        peer,
        process.execPath,
        '-e',
        `require('http').createServer((q, s) => { console.log(q.socket.remoteAddress); s.end('${token}\\n'); }).listen(8080, '10.98.0.2', () => console.log('listening'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    peerServer.stdout!.on('data', (c: Buffer) => peerHits.push(...c.toString().trim().split('\n')));
    await waitUntil(() => peerHits.includes('listening'), 60_000);

    home = await mkdtemp(join(tmpdir(), 'bgr-own-'));
    await chmod(home, 0o755); // the owner reaches its dirs inside; system run makes them the owner's
    await mkdir(join(home, 'config'));
    const tokenShort = fx.id.slice(6);
    await writeFile(
      join(home, 'config', 'config.toml'),
      [
        `bridge_name = "br-fc-${tokenShort}"`,
        'bridge_ip = "172.28.0.1"',
        'tap_pool_size = 1',
        'cow_strategy = "qcow2"',
        'vmm = "qemu"',
        'accel = "tcg"',
        'default_image_name = "alpine"',
        'default_kernel_name = "test"',
        'warm_templates = false',
        'dns_addr = "127.0.0.1:5353"',
        '[vm_defaults]',
        'vcpu = 1',
        'memory_mib = 256',
        'disk_size = "64MiB"',
        'system_overlay_size = "64MiB"',
        '',
      ].join('\n'),
    );
    // The test kernel as a kernel-store entry named "test", and the guest userland to import: the owner's.
    const kernel = await ensureTestKernel();
    await mkdir(join(home, 'state', 'kernels'), { recursive: true, mode: 0o700 });
    await cp(dirname(kernel.kernelPath), join(home, 'state', 'kernels', 'test'), { recursive: true });
    const root = await guestRootSource();
    versionId = root.versionId;
    await mkdir(join(home, 'in'));
    await copyFile(root.tarball, join(home, 'in', 'root.tar.gz'));
    await runner.run(['chown', '-R', `${uid}:${gid}`, join(home, 'state'), join(home, 'in')]);
  }, 900_000);

  afterAll(async () => {
    const code = await stopRun();
    if (code !== undefined && code !== 0) console.error(`system run exited ${code}`);
    peerServer?.kill('SIGTERM');
    for (const pid of userProcesses()) process.kill(pid, 'SIGKILL');
    if (uid) await runner.run(['userdel', user], { allowFailure: true });
    if (home) await rm(home, { recursive: true, force: true });
    await fx.cleanup();
    await fx.assertNoLeftovers();
  }, 300_000);

  it('runs the helper as root and the daemon as the owner', async () => {
    const r = await startRun();
    expect(processUids(r.helperPid)).toEqual({ real: 0, effective: 0 });
    expect(processUids(r.daemonPid)).toEqual({ real: uid, effective: uid });
    expect(instanceDaemons()).toEqual([{ pid: r.daemonPid, euid: uid }]);
  }, 300_000);

  it('imports an image and runs a command in a guest with its exit code, as the owner', async () => {
    const imp = await asUser(['image', 'import', 'alpine', join(home, 'in', 'root.tar.gz')]);
    expect(imp.exitCode, imp.stderr).toBe(0);
    const rel = await asUser(['vm', 'run', '--rm', '--', 'cat', '/etc/os-release']);
    expect(rel.exitCode, rel.stderr).toBe(0);
    expect(rel.stdout).toContain(`VERSION_ID=${versionId}`);
    const seven = await asUser(['vm', 'run', '--rm', '--', 'sh', '-c', 'exit 7']);
    expect(seven.exitCode, seven.stderr).toBe(7);
    expect(JSON.parse((await asUser(['vm', 'list', '--json'])).stdout)).toEqual([]);
    expect(await taps()).toHaveLength(1); // the pool's one idle tap
    // Every file the daemon made is the owner's: nothing in its state dir belongs to root.
    const rootOwned = await runner.run(['find', join(home, 'state'), join(home, 'run'), '-uid', '0']);
    expect(rootOwned.stdout.trim()).toBe('');
  }, 900_000);

  it('a NAT guest reaches the peer namespace masqueraded; exec, stop and delete work', async () => {
    const made = await asUser(['vm', 'create', '--name', 'natted', '--nat']);
    expect(made.exitCode, made.stderr).toBe(0);
    const got = await asUser([
      'vm',
      'exec',
      'natted',
      '--',
      'wget',
      '-q',
      '-O',
      '-',
      'http://10.98.0.2:8080/',
    ]);
    expect(got.exitCode, got.stderr).toBe(0);
    expect(got.stdout.trim()).toBe(token);
    // The peer saw the namespace's uplink address, not the guest's: the helper's masquerade rule did it.
    expect(peerHits).toContain('10.98.0.1');
    const who = await asUser(['vm', 'exec', 'natted', '--', ...PRINT_VERSION_ID]);
    expect(who.exitCode, who.stderr).toBe(0);
    expect(who.stdout.trim()).toBe(versionId);
    const stop = await asUser(['vm', 'stop', 'natted']);
    expect(stop.exitCode, stop.stderr).toBe(0);
    const del = await asUser(['vm', 'delete', 'natted']);
    expect(del.exitCode, del.stderr).toBe(0);
    const rules = await fx.exec(ns, ['nft', 'list', 'ruleset']);
    expect(rules).not.toContain('172.28.');
  }, 900_000);

  it('where /dev/net/tun is closed to the owner, vm run fails saying how to open it, and leaves no VM', async () => {
    expect(await stopRun()).toBe(0);
    await startRun('600');
    const r = await asUser(['vm', 'run', '--rm', '--', 'true']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('could not open /dev/net/tun: Permission denied');
    expect(r.stderr).toContain('chmod 0666 /dev/net/tun');
    expect(JSON.parse((await asUser(['vm', 'list', '--json'])).stdout)).toEqual([]);
    expect(await stopRun()).toBe(0);
    await startRun();
  }, 900_000);

  it('after a SIGKILL of the daemon, a new system run adopts the running VM; Ctrl-C leaves nothing', async () => {
    const made = await asUser(['vm', 'create', '--name', 'kept', '--nat']);
    expect(made.exitCode, made.stderr).toBe(0);
    const vmms = await processesNaming(join(home, 'state', 'vms'));
    expect(vmms.length).toBeGreaterThan(0);
    for (const p of vmms) expect(processUids(p.pid)).toEqual({ real: uid, effective: uid });

    const first = run!;
    const exited = once(first.child, 'exit');
    process.kill(first.daemonPid, 'SIGKILL');
    expect((await exited)[0]).toBe(1); // system run stops the helper when the daemon dies
    run = undefined;
    // The guest outlived its daemon.
    for (const p of vmms) expect(processUids(p.pid)).toBeDefined();

    const second = await startRun();
    expect(processUids(second.daemonPid)).toEqual({ real: uid, effective: uid });
    expect(instanceDaemons()).toEqual([{ pid: second.daemonPid, euid: uid }]);
    const again = await asUser(['vm', 'exec', 'kept', '--', 'echo', 'adopted']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe('adopted');
    const del = await asUser(['vm', 'delete', 'kept']);
    expect(del.exitCode, del.stderr).toBe(0);

    expect(await stopRun('SIGINT')).toBe(0);
    // The adopted guest's QEMU was the SIGKILLed daemon's child: killed now, it is a zombie until the
    // process it was reparented to (init here) reaps it, which happens when that process gets to it.
    await waitUntil(() => userProcesses().length === 0, 30_000).catch(() => {});
    // Named by their state and command lines, so a failure says what was left.
    const described = (pid: number) => {
      try {
        const state = readFileSync(`/proc/${pid}/stat`, 'utf8')
          .replace(/^.*\) /, '')
          .split(' ')[0];
        return `${pid} ${state} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`;
      } catch {
        return `${pid} (gone)`;
      }
    };
    expect(userProcesses().map(described)).toEqual([]);
    expect(await processesNaming(home)).toEqual([]);
    expect(await taps()).toEqual([]);
    const rules = await fx.exec(ns, ['nft', 'list', 'ruleset']);
    expect(rules).not.toContain('172.28.');
    const loops = await runner.run(['losetup', '-J', '-l']);
    expect(loops.stdout).not.toContain(home);
    // No file of the owner's outside BANGER_HOME in the places a daemon or QEMU could write.
    const strays = await runner.run(
      [
        'find',
        '/tmp',
        '/var/tmp',
        '/run',
        '/dev/shm',
        '-xdev',
        '-path',
        home,
        '-prune',
        '-o',
        '-uid',
        String(uid),
        '-print',
      ],
      { allowFailure: true },
    );
    expect(strays.stdout.trim()).toBe('');
    expect(existsSync(join(home, 'run-root', 'bangerd-root.sock'))).toBe(false);
    expect(existsSync(join(home, 'run', 'bangerd.sock'))).toBe(false);
  }, 900_000);
});
