/**
 * The whole chain under QEMU TCG: `banger image import` (the image service: rootfs build + guest assets)
 * of a busybox userland rootfs tarball (the Alpine minirootfs where ../shared has it, else the busybox rootfs
 * any Debian host builds), no kernel named, so `vm run` boots the config's default kernel from the kernel
 * store; then the default Debian image (`debian-bookworm`, built by the image service's debootstrap recipe,
 * its tarball cached under the test cache) with its default kernel: sshd, the pinned host key, the work
 * disk at /root. Network in a namespace this file creates.
 */
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listLinks } from '../../src/host/index.js';
import { type BangerInstance, REPO_ROOT, waitUntil } from '../fixtures/banger-instance.js';
import { createGuestInstance, requireGuestHost, teardownGuestInstance } from '../fixtures/guest-instance.js';
import { type GuestRootSource, guestRootSource, PRINT_VERSION_ID } from '../fixtures/guest-root.js';
import { cliLong } from '../fixtures/images.js';
import { ensureTestKernel, testCacheDir } from '../fixtures/kernel.js';
import { createNetnsFixture } from '../fixtures/netns.js';
import { processesNaming } from '../fixtures/proc-scan.js';

const fx = createNetnsFixture();
const runner = fx.runner;

await requireGuestHost(runner, { tools: ['debugfs'] });
const debianSkip =
  process.env.BANGER_E2E_DEBIAN === '0'
    ? 'BANGER_E2E_DEBIAN=0'
    : !existsSync('/usr/sbin/debootstrap')
      ? 'debootstrap is not installed'
      : !existsSync('/usr/bin/ssh')
        ? 'the ssh client is not installed'
        : undefined;

describe('vm run on an imported image with the default kernel', () => {
  let inst: BangerInstance;
  let version: string;
  let ns: string;
  let dnsPort: number;
  let root: GuestRootSource;

  beforeAll(async () => {
    const kernel = await ensureTestKernel();
    // The daemon's DNS on a free loopback port of its own (not the default another daemon may hold).
    const probe = createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
    dnsPort = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    version = kernel.version;
    root = await guestRootSource();
    ({ inst, ns } = await createGuestInstance(fx, 'img', [
      'default_kernel_name = "test"',
      `dns_addr = "127.0.0.1:${dnsPort}"`,
    ]));
    // The cached test kernel is a kernel-store entry named "test": hard-link it into this store.
    await mkdir(join(inst.home, 'state', 'kernels'), { recursive: true, mode: 0o700 });
    await cp(dirname(kernel.kernelPath), join(inst.home, 'state', 'kernels', 'test'), { recursive: true });
  });

  afterAll(() => teardownGuestInstance(fx, inst));

  it('imports, boots and runs a command, then deletes', async () => {
    // The first call starts the daemon: it keeps the recipe cache setting for the Debian test below.
    const imp = await inst.cli(['image', 'import', 'alpine', root.tarball], {
      BANGER_RECIPE_CACHE: `${testCacheDir()}/recipes`,
    });
    expect(imp.exitCode, imp.stderr).toBe(0);
    const r = await inst.cli([
      'vm',
      'run',
      '--rm',
      '--',
      'sh',
      '-c',
      `${PRINT_VERSION_ID.join(' ')}; uname -r`,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${root.versionId}\n${version}`);
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
  });

  it("--image alpine prints its release; a command's exit code is banger's", async () => {
    const rel = await inst.cli(['vm', 'run', '--rm', '--image', 'alpine', '--', ...PRINT_VERSION_ID]);
    expect(rel.exitCode, rel.stderr).toBe(0);
    expect(rel.stdout).toBe(root.versionId);
    const seven = await inst.cli(['vm', 'run', '--rm', '--image', 'alpine', '--', 'sh', '-c', 'exit 7']);
    expect(seven.exitCode, seven.stderr).toBe(7);
    // The work disk is mounted at /root, so a command sees it (and writes there land on it).
    // It was made on the host with the image's /root in it (mode 0700 from the image), so the guest only mounts it.
    const look = 'grep " /root " /proc/mounts; stat -c %a /root; ls -A /root';
    const mounted = await inst.cli(['vm', 'run', '--rm', '--', 'sh', '-c', look]);
    expect(mounted.exitCode, mounted.stderr).toBe(0);
    expect(mounted.stdout).toMatch(/^\/dev\/vdb \/root ext4 .*\n700\n/);
    expect(mounted.stdout.split('\n')).toContain('.banger-seeded');
    // No command and no sshd in this image: a login shell through the agent's PTY exec, fed from our stdin.
    const shell = await cliLong(inst, ['vm', 'run', '--rm', '--image', 'alpine'], {
      input: Buffer.from('echo "tty:$(tty)"; exit 5\n'),
      timeoutMs: 300_000,
    });
    expect(shell.exitCode, shell.stderr).toBe(5);
    expect(shell.stdout).toMatch(/tty:\/dev\/pts\/\d+/);
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('a bare vm run on a terminal gets an interactive shell on a guest PTY, raw, sized like the terminal', async () => {
    // script(1) gives the CLI a real terminal (stdin and stdout are its pty), sized before banger starts.
    // What we type goes through the CLI's raw mode to the agent's PTY, so Ctrl-C interrupts the guest's
    // command instead of banger.
    const banger = [
      process.execPath,
      join(REPO_ROOT, 'bin', 'banger'),
      'vm',
      'run',
      '--rm',
      '--image',
      'alpine',
    ];
    const term = execa('script', ['-qec', `stty rows 33 cols 101; ${banger.join(' ')}`, '/dev/null'], {
      env: inst.env,
      stdin: 'pipe',
      reject: false,
      timeout: 300_000,
    });
    let screen = '';
    term.stdout?.on('data', (d: Buffer) => {
      screen += d.toString();
    });
    term.stdin?.write('echo "size:$(stty size) tty:$(tty)"; echo sleep""ing; sleep 60\n');
    await waitUntil(() => /^sleeping\r?$/m.test(screen), 120_000);
    term.stdin?.write('\x03');
    term.stdin?.write('echo "after:$?"; exit 3\n');
    const r = await term;
    expect(r.exitCode, screen + r.stderr).toBe(3);
    expect(screen).toMatch(/size:33 101 tty:\/dev\/pts\/\d+/);
    expect(screen).toMatch(/after:130/); // sleep died of SIGINT in the guest; banger carried on
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('four VMs created at once all boot, each with its own name, address and tap, and all clean up', async () => {
    const names = ['quad-a', 'quad-b', 'quad-c', 'quad-d'];
    const created = await Promise.all(
      names.map((name) =>
        cliLong(inst, ['vm', 'create', '--image', 'alpine', '--name', name], { timeoutMs: 600_000 }),
      ),
    );
    for (const c of created) expect(c.exitCode, c.stderr).toBe(0);
    const vms = JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout) as {
      name: string;
      state: string;
      runtime: { guestIp: string; identities: { kind: string; name?: string }[] };
    }[];
    expect(vms.map((v) => v.name).sort()).toEqual(names);
    expect(vms.every((v) => v.state === 'running')).toBe(true);
    const ips = vms.map((v) => v.runtime.guestIp);
    const taps = vms.map((v) => v.runtime.identities.find((i) => i.kind === 'tap')?.name);
    expect(new Set(ips).size).toBe(4);
    expect(new Set(taps).size).toBe(4);
    expect(taps.every((t) => t?.startsWith('tap-fc-'))).toBe(true);

    // Each guest's agent answers with its own hostname and address, and the guests reach one another.
    const seen = await Promise.all(
      vms.map((v) =>
        inst
          .cli(['vm', 'exec', v.name, '--', 'sh', '-c', 'hostname; ip -4 -o addr show'])
          .then((r) => ({ v, r })),
      ),
    );
    for (const { v, r } of seen) {
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe(v.name);
      expect(r.stdout).toContain(`inet ${v.runtime.guestIp}/`);
    }
    // A listener in one guest; `vm ports` asks all four at once and names each VM. Its HTTP probe connects
    // to every TCP port, which ends a one-shot `nc -l`: a loop listens again after each connection.
    const listen = await inst.cli([
      'vm',
      'exec',
      'quad-a',
      '--',
      'sh',
      '-c',
      'setsid sh -c "while :; do nc -l -p 8123 </dev/null >/dev/null 2>&1; done" </dev/null >/dev/null 2>&1 &',
    ]);
    expect(listen.exitCode, listen.stderr).toBe(0);
    let ports: { name: string; guestIp: string; ports: { endpoint: string; process?: string }[] }[] = [];
    await waitUntil(async () => {
      const r = await inst.cli(['vm', 'ports', ...names, '--json']);
      ports = JSON.parse(r.stdout);
      return ports.find((p) => p.name === 'quad-a')?.ports.some((p) => p.endpoint.endsWith(':8123')) ?? false;
    }, 60_000);
    expect(ports.map((p) => p.name).sort()).toEqual(names);
    const table = await inst.cli(['vm', 'ports', 'quad-a', 'quad-b']);
    expect(table.stdout).toMatch(/^VM\s+ENDPOINT\s+PROTO\s+PROCESS/);
    expect(table.stdout).toMatch(/quad-a\s+\S+:8123\s+tcp\s+nc/);
    const ping = await inst.cli([
      'vm',
      'exec',
      names[0] as string,
      '--',
      'ping',
      '-c',
      '1',
      '-W',
      '10',
      ips[3] as string,
    ]);
    expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);

    // The daemon's DNS names every running guest; stats and health come from the VMM and the guest's agent.
    const resolver = new Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([`127.0.0.1:${dnsPort}`]);
    for (const v of vms) expect(await resolver.resolve4(`${v.name}.vm`)).toEqual([v.runtime.guestIp]);
    const a = vms.find((v) => v.name === 'quad-a');
    const stats = JSON.parse((await inst.cli(['vm', 'stats', 'quad-a', '--json'])).stdout);
    expect(stats.memory.guestTotalBytes).toBeGreaterThan(128 * 1024 * 1024);
    expect(stats.memory.guestTotalBytes).toBeLessThanOrEqual(256 * 1024 * 1024);
    expect(stats.memory.guestAvailableBytes).toBeGreaterThan(0);
    expect(stats.memory.vmmRssBytes).toBeGreaterThan(0);
    expect(stats.cpu.seconds).toBeGreaterThan(0);
    expect(stats.network.tap).toBe(a?.runtime.identities.find((i) => i.kind === 'tap')?.name);
    expect(stats.network.fromGuestBytes).toBeGreaterThan(0); // the ping above went out through it
    expect(stats.disk.rootAllocatedBytes).toBeGreaterThan(0);
    expect(stats.disk.workAllocatedBytes).toBeGreaterThan(0);
    const health = JSON.parse((await inst.cli(['vm', 'health', 'quad-a', '--json'])).stdout);
    expect(health.health.network).toMatch(/^(configured|already)$/);
    const rtt = JSON.parse((await inst.cli(['vm', 'ping', 'quad-a', '--json'])).stdout);
    expect(rtt.rttMs).toBeGreaterThan(0);

    const deleted = await inst.cli(['vm', 'delete', ...names]);
    expect(deleted.exitCode, deleted.stderr).toBe(0);
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
    await expect(resolver.resolve4('quad-a.vm')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(await processesNaming(join(inst.home, 'state', 'vms'))).toEqual([]);
    const left = (await listLinks(runner, ns)).filter((l) => l.name.startsWith('tap-fc-'));
    expect(left.length).toBeLessThanOrEqual(1); // the pool's one idle tap
  });

  describe.skipIf(debianSkip !== undefined)(
    `the default Debian image${debianSkip ? ` (skipped: ${debianSkip})` : ''}`,
    () => {
      const long = (args: string[]) => cliLong(inst, args, { timeoutMs: 600_000 });
      const knownHosts = () => join(inst.home, 'state', 'ssh', 'known_hosts');

      it('vm run --rm -- cat /etc/os-release prints Debian', { timeout: 1_200_000 }, async () => {
        const pull = await long(['image', 'pull', 'debian-bookworm']);
        expect(pull.exitCode, pull.stderr).toBe(0);
        const r = await long([
          'vm',
          'run',
          '--rm',
          '--image',
          'debian-bookworm',
          '--memory',
          '512',
          '--',
          'cat',
          '/etc/os-release',
        ]);
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stdout).toContain('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"');
        expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
      });

      it('a VM with sshd: vm ssh works with the host key pinned, across a restart', {
        timeout: 1_200_000,
      }, async () => {
        const c = await long([
          'vm',
          'create',
          '--name',
          'deb',
          '--image',
          'debian-bookworm',
          '--memory',
          '512',
        ]);
        expect(c.exitCode, c.stderr).toBe(0);
        const vm = JSON.parse((await inst.cli(['vm', 'show', 'deb', '--json'])).stdout);
        // Pinned at start, from the key file read through the agent.
        const guestKey = (
          await inst.cli(['vm', 'exec', 'deb', '--', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'])
        ).stdout
          .split(' ')
          .slice(0, 2)
          .join(' ');
        expect(await readFile(knownHosts(), 'utf8')).toContain(`${vm.runtime.guestIp} ${guestKey}\n`);
        const ssh = await long(['vm', 'ssh', 'deb', '--', 'cat', '/etc/debian_version']);
        expect(ssh.exitCode, ssh.stderr).toBe(0);
        expect(ssh.stdout).toMatch(/^12\./);
        const mounted = await inst.cli(['vm', 'exec', 'deb', '--', 'findmnt', '-no', 'SOURCE', '/root']);
        expect(mounted.stdout).toBe('/dev/vdb');
        // The work disk came with Debian's /root dotfiles, seeded on the host when it was made.
        const dotfiles = await inst.cli([
          'vm',
          'exec',
          'deb',
          '--',
          'sh',
          '-c',
          'test -s /root/.bashrc && test -s /root/.profile',
        ]);
        expect(dotfiles.exitCode, dotfiles.stderr).toBe(0);
        expect((await long(['vm', 'restart', 'deb'])).exitCode).toBe(0);
        const again = await long(['vm', 'ssh', 'deb', '--', 'true']);
        expect(again.exitCode, again.stderr).toBe(0);

        // A key that no longer matches the pin is refused with what to do.
        const pinned = await readFile(knownHosts(), 'utf8');
        const forged = pinned.replace(
          guestKey,
          'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbB',
        );
        await writeFile(knownHosts(), forged);
        const refused = await long(['vm', 'ssh', 'deb', '--', 'true']);
        expect(refused.exitCode).not.toBe(0);
        expect(refused.stderr).toMatch(/different ssh host key/);
        expect(refused.stderr).toContain(`ssh-keygen -R ${vm.runtime.guestIp} -f ${knownHosts()}`);

        expect((await inst.cli(['vm', 'delete', 'deb'])).exitCode).toBe(0);
        expect(await readFile(knownHosts(), 'utf8')).not.toContain(`${vm.runtime.guestIp} `);
      });

      it('forks of a VM with sshd each get their own host key, and vm ssh reaches each', {
        timeout: 1_200_000,
      }, async () => {
        const created = await long([
          'vm',
          'create',
          '--name',
          'deb-src',
          '--image',
          'debian-bookworm',
          '--memory',
          '512',
        ]);
        expect(created.exitCode, created.stderr).toBe(0);
        const keyOf = async (name: string) =>
          (await inst.cli(['vm', 'exec', name, '--', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).stdout
            .split(' ')
            .slice(0, 2)
            .join(' ');
        const snap = await long(['vm', 'snapshot', 'deb-src', 'deb-snap']);
        expect(snap.exitCode, snap.stderr).toBe(0);
        const keys = new Set([await keyOf('deb-src')]);
        for (const name of ['deb-fa', 'deb-fb']) {
          const f = await long(['vm', 'fork', 'deb-snap', '--name', name]);
          expect(f.exitCode, f.stderr).toBe(0);
          const key = await keyOf(name);
          expect(key).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
          keys.add(key);
          // sshd serves the new key (it was told to reload): ssh with strict checking against the pin works,
          // and the pin is the fork's own key at the fork's address.
          const ssh = await long(['vm', 'ssh', name, '--', 'hostname']);
          expect(ssh.exitCode, ssh.stderr).toBe(0);
          expect(ssh.stdout).toBe(name);
          const ip = JSON.parse((await long(['vm', 'show', name, '--json'])).stdout).runtime.guestIp;
          expect(await readFile(knownHosts(), 'utf8')).toContain(`${ip} ${key}\n`);
        }
        expect(keys.size).toBe(3);
        for (const name of ['deb-fa', 'deb-fb', 'deb-src'])
          expect((await inst.cli(['vm', 'delete', name])).exitCode).toBe(0);
        expect((await inst.cli(['snapshot', 'rm', 'deb-snap'])).exitCode).toBe(0);
      });

      it('the workspace loop and docker on the default image: run -d PATH, change, export, git apply; docker info', {
        timeout: 1_200_000,
      }, async () => {
        const work = await fx.tempDir();
        const repo = join(work, 'repo');
        await mkdir(join(repo, 'src'), { recursive: true });
        await writeFile(join(repo, 'src', 'main.c'), 'int main(void) { return 0; }\n');
        await writeFile(join(repo, 'gone.txt'), 'bye\n');
        const git = (dir: string, ...args: string[]) =>
          runner.run(['git', '-C', dir, '-c', 'user.name=h', '-c', 'user.email=h@e', ...args]);
        await git(repo, 'init', '-q', '-b', 'main');
        await git(repo, 'add', '.');
        await git(repo, 'commit', '-q', '-m', 'one');
        // Bare `vm run PATH` on the sshd image: ssh into a login shell in /root/repo (fed from our stdin here);
        // without --rm the VM stays, and banger says so.
        const run = await cliLong(
          inst,
          ['vm', 'run', '--name', 'ws', '--image', 'debian-bookworm', '--memory', '1024', repo],
          { input: Buffer.from('pwd\nexit 0\n'), timeoutMs: 600_000 },
        );
        expect(run.exitCode, run.stderr).toBe(0);
        expect(run.stdout).toContain('/root/repo');
        expect(run.stderr).toContain('vm ws is still running');
        const change = await long([
          'vm',
          'exec',
          'ws',
          '--',
          'sh',
          '-c',
          'set -e; cd /root/repo; echo "// edited" >> src/main.c; echo new > new.txt; rm gone.txt;' +
            ' head -c 2048 /dev/urandom > data.bin; make -s src/main >/dev/null; rm src/main;' +
            ' jq -n 1 >/dev/null; command -v unzip rsync >/dev/null',
        ]);
        expect(change.exitCode, change.stderr).toBe(0);
        const patch = join(work, 'p.patch');
        const exp = await long(['vm', 'workspace', 'export', 'ws', '-o', patch]);
        expect(exp.exitCode, exp.stderr).toBe(0);
        const clean = join(work, 'clean');
        await runner.run(['git', 'clone', '-q', repo, clean]);
        expect(
          (await runner.run(['git', '-C', clean, 'apply', patch], { allowFailure: true })).exitCode,
        ).toBe(0);
        const sums =
          'cd "$1" && find . -path ./.git -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum';
        const guestSums = await long(['vm', 'exec', 'ws', '--', 'sh', '-c', sums, 'sh', '/root/repo']);
        expect((await runner.run(['sh', '-c', sums, 'sh', clean])).stdout.trim()).toBe(
          guestSums.stdout.trim(),
        );

        // docker is socket-activated: not running after boot, started by the first client.
        const before = await long(['vm', 'exec', 'ws', '--', 'systemctl', 'is-active', 'docker.service']);
        expect(before.stdout).not.toBe('active');
        const info = await long([
          'vm',
          'exec',
          'ws',
          '--',
          'docker',
          'info',
          '--format',
          '{{.ServerVersion}}',
        ]);
        expect(info.exitCode, info.stderr).toBe(0);
        expect(info.stdout).toMatch(/^\d+\.\d+/);
        expect((await inst.cli(['vm', 'delete', 'ws'])).exitCode).toBe(0);
      });
    },
  );
});
