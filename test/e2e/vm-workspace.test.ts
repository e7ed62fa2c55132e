/**
 * Workspaces end to end: the CLI, a real daemon, QEMU TCG, a busybox userland guest (guestRootSource: Alpine's
 * minirootfs or the busybox rootfs) with the host's git copied in
 * (test/fixtures/git-guest.ts), the agent over virtio-serial. A repository goes in with `vm run -d PATH`,
 * is changed in the guest (edit, add, delete, rename, chmod, binary), comes back with
 * `vm workspace export`, and `git apply` on a clean checkout of the same commit gives the guest's tree.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BangerInstance } from '../fixtures/banger-instance.js';
import { addFakeMise, addHostGit } from '../fixtures/git-guest.js';
import {
  createGuestInstance,
  registerGuestImage,
  requireGuestHost,
  teardownGuestInstance,
} from '../fixtures/guest-instance.js';
import { buildGuestRoot } from '../fixtures/guest-root.js';
import { cliLong } from '../fixtures/images.js';
import { createNetnsFixture } from '../fixtures/netns.js';

const fx = createNetnsFixture();
const runner = fx.runner;

await requireGuestHost(runner, { tools: ['git', 'ldd'] });

/**
 * Every file and link under dir but .git, with its mode and content hash (links with their target): the
 * same script on the host (GNU) and in the guest (busybox), so the two trees compare line for line.
 */
const MANIFEST = `cd "$1" && find . -path ./.git -prune -o \\( -type f -o -type l \\) -print | LC_ALL=C sort | while read -r f; do
  if [ -L "$f" ]; then echo "L $f -> $(readlink "$f")"; else echo "F $f $(stat -c %a "$f") $(sha256sum < "$f" | cut -d' ' -f1)"; fi
done`;

describe('workspaces under QEMU TCG', () => {
  let inst: BangerInstance;
  let work: string;
  let repo: string;
  const cli = (args: string[], env: Record<string, string> = {}) =>
    cliLong(inst, args, { env, timeoutMs: 300_000 });
  const git = (dir: string, ...args: string[]) =>
    runner.run(['git', '-C', dir, '-c', 'user.name=Host', '-c', 'user.email=host@example.com', ...args]);
  const vmNames = async () =>
    (JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout) as { name: string }[]).map((v) => v.name);

  beforeAll(async () => {
    const g = await createGuestInstance(fx, 'ws', (dir) => [
      '[[file_sync]]',
      `host = "${join(dir, 'synced.txt')}"`,
      'guest = "~/.config/synced.txt"',
      'mode = "0640"',
      '[[file_sync]]',
      `host = "${join(dir, 'synced-dir')}"`,
      'guest = "/root/synced-dir"',
      '[[file_sync]]',
      `host = "${join(dir, 'not-there')}"`,
      'guest = "~/nothing"',
    ]);
    ({ inst, work } = g);
    writeFileSync(join(work, 'synced.txt'), 'from the host\n');
    mkdirSync(join(work, 'synced-dir', 'sub'), { recursive: true });
    writeFileSync(join(work, 'synced-dir', 'sub', 'f'), 'deep\n');
    const identity = join(work, 'host-gitconfig');
    writeFileSync(identity, '[user]\n\tname = Host User\n\temail = host.user@example.com\n');
    const rootfs = await buildGuestRoot(runner, work, '128M', async (tree) => {
      await addHostGit(runner, tree);
      await addFakeMise(tree);
    });
    registerGuestImage(g, 'alpine', rootfs, {
      env: ['PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
      workingDir: '/root',
    });
    // The daemon starts with this first call and keeps its environment: the host identity it reads.
    const first = await inst.cli(['vm', 'list'], { GIT_CONFIG_GLOBAL: identity });
    expect(first.exitCode, first.stderr).toBe(0);

    repo = join(work, 'repo');
    mkdirSync(join(repo, 'src'), { recursive: true });
    writeFileSync(join(repo, 'src', 'main.txt'), 'line 1\nline 2\n');
    writeFileSync(join(repo, 'gone.txt'), 'to be deleted\n');
    writeFileSync(join(repo, 'old-name.txt'), 'renamed in the guest\n'.repeat(20));
    writeFileSync(join(repo, 'script.sh'), '#!/bin/sh\necho hi\n');
    writeFileSync(join(repo, 'blob.bin'), Buffer.from([0, 1, 2, 255, 254, 0, 7]));
    writeFileSync(join(repo, '.gitignore'), 'build/\n');
    symlinkSync('/etc/passwd', join(repo, 'outside-link'));
    await git(repo, 'init', '-q', '-b', 'main');
    await git(repo, 'add', '.');
    await git(repo, 'commit', '-q', '-m', 'initial');
    // Host state beyond the commit: an ignored build dir, an untracked file, a link to a directory outside,
    // a FIFO (skipped with a notice).
    mkdirSync(join(repo, 'build'));
    writeFileSync(join(repo, 'build', 'out.o'), 'ignored');
    writeFileSync(join(repo, 'untracked.txt'), 'not committed yet\n');
    symlinkSync('/etc', join(repo, 'etc-link'));
    await runner.run(['mkfifo', join(repo, 'pipe')]);
  }, 600_000);

  afterAll(() => teardownGuestInstance(fx, inst));

  it('refuses bad input before any VM is made', async () => {
    const broken = join(work, 'broken');
    mkdirSync(join(broken, '.git'), { recursive: true });
    writeFileSync(join(broken, '.git', 'HEAD'), 'garbage\n');
    const tools = join(work, 'tools');
    mkdirSync(tools);
    writeFileSync(join(tools, '.tool-versions'), 'nodejs 20.0.0\n');
    const big = join(work, 'big');
    mkdirSync(big);
    await runner.run(['truncate', '-s', '100M', join(big, 'sparse.img')]);
    const cases: [string[], RegExp][] = [
      [['vm', 'run', '-d', join(work, 'missing')], /does not exist/],
      [['vm', 'run', '-d', join(work, 'synced.txt')], /is a file, not a directory/],
      [['vm', 'run', '-d', '/dev/null'], /is a device, not a directory/],
      [['vm', 'run', '-d', broken], /broken \.git/],
      [['vm', 'run', '-d', '--from', 'main', repo], /--from needs --branch/],
      [['vm', 'run', '-d', '--branch', 'main', repo], /branch main already exists/],
      [['vm', 'run', '-d', '--branch', 'x', '--from', 'nope', repo], /--from nope is not a commit/],
      [['vm', 'run', '-d', big], /more than the 64 MiB work disk[\s\S]*--disk-size/],
      [['vm', 'run', '-d', tools], /\.tool-versions[\s\S]*--nat[\s\S]*--no-bootstrap/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.exitCode, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(await vmNames()).toEqual([]);
  });

  it('vm run -d PATH, changes in the guest, export, git apply on a clean checkout: the same tree', async () => {
    const run = await cli(['vm', 'run', '-d', '--name', 'ws', repo]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe('ws');
    expect(run.stderr).toMatch(/workspace: \/root\/repo at [0-9a-f]{12}/);
    expect(run.stderr).toContain('not copied: pipe (a FIFO)');
    expect(run.stderr).toMatch(/warning: file_sync\[2\]: .*not-there does not exist; skipped/);

    const look = await cli([
      'vm',
      'exec',
      'ws',
      '--',
      'sh',
      '-c',
      'cd /root/repo && git status --porcelain && git branch --show-current && readlink outside-link && readlink etc-link' +
        ' && ls -A && stat -c "%u:%g" src/main.txt && git config --global user.name && git config --global user.email',
    ]);
    expect(look.exitCode, look.stderr).toBe(0);
    const lines = look.stdout.split('\n');
    // Only what is uncommitted on the host shows; the ignored build dir and the FIFO never came.
    expect(lines.filter((l) => l.startsWith('??')).sort()).toEqual(['?? etc-link', '?? untracked.txt']);
    expect(lines).toContain('main');
    expect(lines).toContain('/etc/passwd');
    expect(lines).toContain('/etc');
    expect(lines).not.toContain('build');
    expect(lines).not.toContain('pipe');
    expect(lines).toContain('0:0');
    expect(lines).toContain('Host User');
    expect(lines).toContain('host.user@example.com');

    const synced = await cli([
      'vm',
      'exec',
      'ws',
      '--',
      'sh',
      '-c',
      'stat -c "%a %u" /root/.config/synced.txt; cat /root/.config/synced.txt /root/synced-dir/sub/f',
    ]);
    expect(synced.stdout).toBe('640 0\nfrom the host\ndeep');

    // The change: edit, add, delete, rename, chmod, a binary file, a new symlink.
    const change = await cli([
      'vm',
      'exec',
      'ws',
      '--',
      'sh',
      '-c',
      [
        'set -e',
        'cd /root/repo',
        'echo "line 3 from the guest" >> src/main.txt',
        'mkdir -p docs && echo "new file" > docs/new.md',
        'rm gone.txt',
        'mv old-name.txt new-name.txt',
        'chmod +x script.sh',
        'head -c 3000 /dev/urandom > data.bin',
        'printf "\\000\\377changed" > blob.bin',
        'ln -s src/main.txt main-link',
      ].join('\n'),
    ]);
    expect(change.exitCode, change.stderr).toBe(0);
    const guestTree = await cli(['vm', 'exec', 'ws', '--', 'sh', '-c', MANIFEST, 'sh', '/root/repo']);
    expect(guestTree.exitCode, guestTree.stderr).toBe(0);

    const patch = join(work, 'p.patch');
    const exp = await cli(['vm', 'workspace', 'export', 'ws', '-o', patch]);
    expect(exp.exitCode, exp.stderr).toBe(0);
    // Made on the host from the repository it came from (no note about a guest-side diff).
    expect(exp.stderr).not.toContain('diffing in the guest');
    const text = readFileSync(patch, 'utf8');
    expect(text).toContain('GIT binary patch');
    expect(text).toContain('rename from old-name.txt');
    expect(text).toContain('new mode 100755');
    expect(text).toContain('deleted file mode');

    const clean = join(work, 'clean');
    await runner.run(['git', 'clone', '-q', repo, clean]);
    const applied = await runner.run(['git', '-C', clean, 'apply', patch], { allowFailure: true });
    expect(applied.exitCode, applied.stderr).toBe(0);
    const hostTree = await runner.run(['sh', '-c', MANIFEST, 'sh', clean]);
    expect(hostTree.stdout.trim()).toBe(guestTree.stdout.trim());

    // The guest's own index was not touched by the export.
    const status = await cli([
      'vm',
      'exec',
      'ws',
      '--',
      'git',
      '-C',
      '/root/repo',
      'diff',
      '--cached',
      '--stat',
    ]);
    expect(status.stdout).toBe('');
  });

  it('prepare refuses an existing /root/repo without --force; a clean repository exports an empty patch', async () => {
    const plain = join(work, 'plain');
    mkdirSync(plain);
    writeFileSync(join(plain, 'a.txt'), 'a\n');
    await git(plain, 'init', '-q', '-b', 'trunk');
    await git(plain, 'add', '.');
    await git(plain, 'commit', '-q', '-m', 'a');
    const refused = await cli(['vm', 'workspace', 'prepare', 'ws', plain]);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/\/root\/repo already exists[\s\S]*--force/);
    const forced = await cli(['vm', 'workspace', 'prepare', 'ws', plain, '--force', '--branch', 'topic']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stdout).toBe('/root/repo');
    const branch = await cli([
      'vm',
      'exec',
      'ws',
      '--',
      'git',
      '-C',
      '/root/repo',
      'branch',
      '--show-current',
    ]);
    expect(branch.stdout).toBe('topic');
    const empty = await cli(['vm', 'workspace', 'export', 'ws']);
    expect(empty.exitCode, empty.stderr).toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).not.toContain('diffing in the guest');

    await cli(['vm', 'exec', 'ws', '--', 'rm', '-rf', '/root/repo']);
    const none = await cli(['vm', 'workspace', 'export', 'ws']);
    expect(none.exitCode).not.toBe(0);
    expect(none.stderr).toMatch(/has no workspace at \/root\/repo[\s\S]*vm workspace prepare ws/);
    expect((await cli(['vm', 'stop', 'ws'])).exitCode).toBe(0);
    const stopped = await cli(['vm', 'workspace', 'export', 'ws']);
    expect(stopped.exitCode).not.toBe(0);
    expect(stopped.stderr).toMatch(/not running/);
    expect((await cli(['vm', 'delete', 'ws'])).exitCode).toBe(0);
  });

  it('bare vm run PATH opens a shell in /root/repo with mise bootstrapping in the background, and reminds', async () => {
    const tools = join(work, 'tools');
    const r = await cliLong(inst, ['vm', 'run', '--nat', '--name', 'shell', tools], {
      input: Buffer.from('pwd; sleep 2; cat /root/.cache/banger/bootstrap.log; exit 0\n'),
      timeoutMs: 300_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('/root/repo');
    expect(r.stdout).toContain('mise install in /root/repo trusted=/root/repo');
    expect(r.stderr).toContain('vm shell is still running (stop it with: banger vm stop shell');
    expect((await cli(['vm', 'delete', 'shell'])).exitCode).toBe(0);
    expect(await vmNames()).toEqual([]);
  });
});
