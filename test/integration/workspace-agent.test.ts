/**
 * Workspace copy-in and export through the real agent binary run on the host (`--listen-unix`), into a
 * directory of this test standing in for /root/repo: the tar stream, the guest-side git set-up, the export
 * script and its size cap, without a VM. The same under QEMU is test/e2e/vm-workspace.test.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copyIn,
  exportPatch,
  exportWorkspace,
  type GuestExec,
  inspectWorkspace,
} from '../../src/daemon/services/workspaces/index.js';
import { type AgentClient, agentBinaryPath, waitForAgent } from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';

const runner = createRunner();
const skipReason = existsSync(agentBinaryPath()) ? undefined : `the agent is not built: ${agentBinaryPath()}`;
if (skipReason) console.warn(`workspace agent tests skipped: ${skipReason}`);

const MANIFEST = `cd "$1" && find . -path ./.git -prune -o \\( -type f -o -type l \\) -print | LC_ALL=C sort | while read -r f; do
  if [ -L "$f" ]; then echo "L $f -> $(readlink "$f")"; else echo "F $f $(stat -c %a "$f") $(sha256sum < "$f" | cut -d' ' -f1)"; fi
done`;

function buffer() {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({
      write(c: Buffer, _e, done) {
        chunks.push(c);
        done();
      },
    }),
    bytes: () => Buffer.concat(chunks),
  };
}

describe.skipIf(skipReason !== undefined)('workspace copy-in and export through the agent', () => {
  let work: string;
  let agent: ChildProcess;
  let client: AgentClient;
  let exec: GuestExec;
  const git = (dir: string, ...args: string[]) =>
    runner.run(['git', '-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args]);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'banger-ws-agent-'));
    const socketPath = join(work, 'agent.sock');
    agent = runner.spawn([agentBinaryPath(), '--listen-unix', socketPath], { pipe: true });
    agent.stdin?.end();
    client = await waitForAgent({ kind: 'virtio-serial', socketPath }, { timeoutMs: 30_000 });
    exec = (req, io) => client.exec(req, io).wait();
  });

  afterAll(async () => {
    client?.close();
    if (agent && agent.exitCode === null) {
      const gone = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await gone;
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function makeRepo(name: string): Promise<string> {
    const repo = join(work, name);
    mkdirSync(join(repo, 'src'), { recursive: true });
    writeFileSync(join(repo, 'src', 'a.txt'), 'a\n'.repeat(50));
    writeFileSync(join(repo, 'gone.txt'), 'gone\n');
    writeFileSync(join(repo, 'run.sh'), '#!/bin/sh\n');
    writeFileSync(join(repo, 'bin.dat'), Buffer.from([0, 1, 2, 3, 255]));
    writeFileSync(join(repo, '.gitignore'), '*.log\n');
    symlinkSync('../../../../etc/shadow', join(repo, 'escape'));
    await git(repo, 'init', '-q', '-b', 'main');
    await git(repo, 'add', '.');
    await git(repo, 'commit', '-q', '-m', 'one');
    writeFileSync(join(repo, 'untracked.txt'), 'u\n');
    writeFileSync(join(repo, 'debug.log'), 'ignored\n');
    return repo;
  }

  it('copies a repository in, exports every kind of change, and git apply reproduces the tree', async () => {
    const repo = await makeRepo('r1');
    const source = await inspectWorkspace(runner, repo, { branch: 'work' });
    const guest = join(work, 'guest-r1');
    const landed = await copyIn(runner, exec, source, guest, { diskHint: '' });
    expect(landed.baseCommit).toBe(source.head);
    expect(existsSync(join(guest, 'debug.log'))).toBe(false);
    expect(readFileSync(join(guest, 'untracked.txt'), 'utf8')).toBe('u\n');
    expect((await runner.run(['readlink', join(guest, 'escape')])).stdout.trim()).toBe(
      '../../../../etc/shadow',
    );

    // The changes, as a user in the guest makes them.
    await runner.run([
      'sh',
      '-c',
      [
        'set -e',
        `cd ${guest}`,
        'echo more >> src/a.txt',
        'rm gone.txt',
        'git mv src/a.txt src/b.txt',
        'chmod +x run.sh',
        'head -c 5000 /dev/urandom > rand.bin',
        'printf "\\377\\000" > bin.dat',
        'mkdir -p new/dir && echo hi > new/dir/f',
        'git -c user.name=g -c user.email=g@e commit -q -am "a commit in the guest"',
        'echo after-commit > late.txt',
      ].join('\n'),
    ]);
    const patch = buffer();
    const r = await exportPatch(exec, guest, patch.sink, { vmName: 'test' });
    // The host-side export (the guest lists and sends, the host diffs) makes the very same patch.
    const notices: string[] = [];
    const hosted = buffer();
    const h = await exportWorkspace(runner, exec, guest, hosted.sink, {
      vmName: 'test',
      source: repo,
      notice: (m) => notices.push(m),
    });
    expect(notices).toEqual([]);
    expect(hosted.bytes().toString()).toBe(patch.bytes().toString());
    expect(h.bytes).toBe(hosted.bytes().length);
    // The new files' contents were hashed for the patch, never written into the guest's object store.
    for (const f of ['rand.bin', 'late.txt']) {
      const blob = (await git(guest, 'hash-object', f)).stdout.trim();
      expect(
        (await runner.run(['git', '-C', guest, 'cat-file', '-e', blob], { allowFailure: true })).exitCode,
      ).not.toBe(0);
    }
    expect(r.bytes).toBe(patch.bytes().length);
    const text = patch.bytes().toString();
    expect(text).toContain('rename from src/a.txt');
    expect(text).toContain('GIT binary patch');
    expect(text).toContain('old mode 100644\nnew mode 100755');

    const clean = join(work, 'clean-r1');
    await runner.run(['git', 'clone', '-q', repo, clean]);
    const file = join(work, 'r1.patch');
    writeFileSync(file, patch.bytes());
    const applied = await runner.run(['git', '-C', clean, 'apply', file], { allowFailure: true });
    expect(applied.exitCode, applied.stderr).toBe(0);
    const want = await runner.run(['sh', '-c', MANIFEST, 'sh', guest]);
    const got = await runner.run(['sh', '-c', MANIFEST, 'sh', clean]);
    expect(got.stdout).toBe(want.stdout);

    // The guest's index and HEAD are as the user left them.
    expect((await git(guest, 'status', '--porcelain')).stdout.trim().split('\n')).toEqual([
      '?? late.txt',
      '?? new/',
      '?? rand.bin',
      '?? untracked.txt',
    ]);
  });

  it('an unchanged workspace is an empty patch; --base-commit diffs against another commit', async () => {
    const repo = await makeRepo('r2');
    await git(repo, 'add', '.');
    await git(repo, 'commit', '-q', '-m', 'two');
    const guest = join(work, 'guest-r2');
    await copyIn(runner, exec, await inspectWorkspace(runner, repo), guest, { diskHint: '' });
    const empty = buffer();
    expect(await exportPatch(exec, guest, empty.sink, { vmName: 'test' })).toEqual({ bytes: 0 });
    const older = buffer();
    await exportPatch(exec, guest, older.sink, { vmName: 'test', baseCommit: 'HEAD~1' });
    expect(older.bytes().toString()).toContain('+++ b/untracked.txt');
    await expect(
      exportPatch(exec, guest, buffer().sink, { vmName: 'test', baseCommit: 'no-such-ref' }),
    ).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('is not a commit') });
  });

  it('host-side export: symlinks and a directory become a link, an empty change; the guest diffs when the host cannot', async () => {
    const repo = await makeRepo('r5');
    mkdirSync(join(repo, 'lib'));
    writeFileSync(join(repo, 'lib', 'x.txt'), 'x\n');
    symlinkSync('a.txt', join(repo, 'src', 'link'));
    await git(repo, 'add', '.');
    await git(repo, 'commit', '-q', '-m', 'two');
    const guest = join(work, 'guest-r5');
    await copyIn(runner, exec, await inspectWorkspace(runner, repo), guest, { diskHint: '' });
    const both = async (opts: { source?: string; baseCommit?: string }) => {
      const notices: string[] = [];
      const hosted = buffer();
      await exportWorkspace(runner, exec, guest, hosted.sink, {
        vmName: 'test',
        notice: (m) => notices.push(m),
        ...opts,
      });
      const inGuest = buffer();
      await exportPatch(exec, guest, inGuest.sink, { vmName: 'test', baseCommit: opts.baseCommit });
      expect(hosted.bytes().toString()).toBe(inGuest.bytes().toString());
      return { patch: hosted.bytes().toString(), notices };
    };
    expect(await both({ source: repo })).toEqual({ patch: '', notices: [] });

    await runner.run([
      'sh',
      '-c',
      [
        'set -e',
        `cd ${guest}`,
        'ln -sfn b.txt src/link',
        'ln -s ../../../../etc/passwd new-link',
        'rm -r lib && ln -s src lib',
        'rm escape',
      ].join('\n'),
    ]);
    const links = await both({ source: repo });
    expect(links.notices).toEqual([]);
    expect(links.patch).toContain('+++ b/new-link');
    expect(links.patch).toContain('deleted file mode 120000');
    expect(links.patch).toContain('--- a/lib/x.txt');
    expect(links.patch.match(/new file mode 120000/g)?.length).toBe(2);

    // A base the host repository lacks (a commit made in the guest): the guest diffs, with a notice.
    await git(guest, 'add', '-A');
    await git(guest, 'commit', '-q', '-m', 'in the guest');
    writeFileSync(join(guest, 'late.txt'), 'late\n');
    const guestBase = await both({ source: repo, baseCommit: 'HEAD' });
    expect(guestBase.patch).toContain('+++ b/late.txt');
    expect(guestBase.notices).toEqual([
      expect.stringMatching(/^the base commit [0-9a-f]{40} is not in .*: diffing in the guest \(slower\)$/),
    ]);

    // Attributes that change content on the way in (text=auto): only the guest's git applies them.
    writeFileSync(join(guest, '.gitattributes'), '* text=auto\n');
    const attrs = await both({ source: repo });
    expect(attrs.notices).toEqual([
      '.gitattributes sets attributes that change content: diffing in the guest (slower)',
    ]);

    // A host repository that is gone: the guest diffs.
    const gone = await both({ source: join(work, 'no-such-repo') });
    expect(gone.notices).toEqual([
      `${join(work, 'no-such-repo')} is no longer a git repository: diffing in the guest (slower)`,
    ]);
  });

  it('refuses an existing directory without force, and an export where there is no repository', async () => {
    const repo = await makeRepo('r3');
    const source = await inspectWorkspace(runner, repo);
    const guest = join(work, 'guest-r3');
    await copyIn(runner, exec, source, guest, { diskHint: '' });
    await expect(copyIn(runner, exec, source, guest, { diskHint: '' })).rejects.toMatchObject({
      code: 'already_exists',
    });
    await copyIn(runner, exec, source, guest, { diskHint: '', force: true });
    await expect(
      exportPatch(exec, join(work, 'nothing-here'), buffer().sink, { vmName: 'v1' }),
    ).rejects.toMatchObject({ code: 'not_found', hint: 'banger vm workspace prepare v1 ./repo' });
  });

  it('a guest that sends more patch than the cap is cut off: the call fails and says why', async () => {
    const repo = await makeRepo('r4');
    const guest = join(work, 'guest-r4');
    await copyIn(runner, exec, await inspectWorkspace(runner, repo), guest, { diskHint: '' });
    writeFileSync(join(guest, 'big.txt'), 'x'.repeat(64 * 1024));
    await expect(
      exportPatch(exec, guest, buffer().sink, { vmName: 'test', maxBytes: 16 * 1024 }),
    ).rejects.toThrow(/more than 16 KiB for the workspace patch/);
    // The dropped connection is replaced for whoever comes next.
    client = await waitForAgent(
      { kind: 'virtio-serial', socketPath: join(work, 'agent.sock') },
      { timeoutMs: 30_000 },
    );
  });
});
