import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkFits,
  inspectWorkspace,
  listGitFiles,
} from '../../../../../src/daemon/services/workspaces/index.js';
import { createRunner } from '../../../../../src/host/index.js';

const runner = createRunner();
let dir: string;
const git = (repo: string, ...args: string[]) =>
  runner.run(['git', '-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args]);

async function makeRepo(name: string): Promise<string> {
  const repo = join(dir, name);
  mkdirSync(join(repo, 'src', 'deep'), { recursive: true });
  writeFileSync(join(repo, 'src', 'deep', 'a.txt'), 'a\n');
  writeFileSync(join(repo, 'README'), 'readme\n');
  writeFileSync(join(repo, '.gitignore'), '*.log\nbuild/\n');
  symlinkSync('/etc/passwd', join(repo, 'passwd-link'));
  await git(repo, 'init', '-q', '-b', 'main');
  await git(repo, 'add', '.');
  await git(repo, 'commit', '-q', '-m', 'one');
  return repo;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'banger-ws-source-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('inspectWorkspace: a git repository as git sees it', () => {
  it('lists tracked and untracked-not-ignored files, .git, parents first; never ignored files', async () => {
    const repo = await makeRepo('plain');
    writeFileSync(join(repo, 'new.txt'), 'new\n');
    writeFileSync(join(repo, 'debug.log'), 'ignored\n');
    mkdirSync(join(repo, 'build'));
    writeFileSync(join(repo, 'build', 'x.o'), 'ignored\n');
    const s = await inspectWorkspace(runner, repo);
    expect(s.kind).toBe('git');
    expect(s.head).toMatch(/^[0-9a-f]{40}$/);
    const files = s.list.entries.filter((e) => e !== '.git' && !e.startsWith('.git/'));
    expect(files.sort()).toEqual(
      ['.gitignore', 'README', 'new.txt', 'passwd-link', 'src', 'src/deep', 'src/deep/a.txt'].sort(),
    );
    expect(s.list.entries).toContain('.git');
    expect(s.list.entries).toContain('.git/HEAD');
    expect(s.list.entries.indexOf('src')).toBeLessThan(s.list.entries.indexOf('src/deep/a.txt'));
    expect(s.toolConfig).toBeUndefined();
  });

  it('a link to a directory outside is listed as a link; an index path under it is never read through it', async () => {
    const repo = await makeRepo('hostile');
    // The tracked directory src/deep is replaced by a link to /etc: the index still lists src/deep/a.txt.
    rmSync(join(repo, 'src', 'deep'), { recursive: true });
    symlinkSync('/etc', join(repo, 'src', 'deep'));
    const s = await inspectWorkspace(runner, repo);
    expect(s.list.entries).not.toContain('src/deep/a.txt');
    expect(s.list.entries.some((e) => e.startsWith('src/deep/'))).toBe(false);
    expect(s.list.skipped).toContain('src/deep/a.txt (under a symlink or non-directory; not followed)');
    // The link itself is untracked-not-ignored: it goes in as a link.
    expect(s.list.entries).toContain('src/deep');
  });

  it('skips special files with a notice and leaves out a tracked file deleted from the work tree', async () => {
    const repo = await makeRepo('special');
    await runner.run(['mkfifo', join(repo, 'fifo')]);
    rmSync(join(repo, 'README'));
    const s = await inspectWorkspace(runner, repo);
    expect(s.list.skipped).toContain('fifo (a FIFO)');
    expect(s.list.entries).not.toContain('README');
    expect(s.list.entries).not.toContain('fifo');
  });

  it('skips nested repositories and submodules with a notice', async () => {
    const list = await listGitFiles(join(dir, 'plain'), ['nested/', 'src']);
    expect(list.skipped).toEqual(['nested (a nested git repository)', 'src (a submodule; not copied)']);
  });

  it('a repository with no commit yet has no head; --branch still works', async () => {
    const repo = join(dir, 'unborn');
    mkdirSync(repo);
    writeFileSync(join(repo, 'x'), 'x');
    await git(repo, 'init', '-q');
    const s = await inspectWorkspace(runner, repo, { branch: 'first' });
    expect(s.head).toBeUndefined();
    expect(s.branch).toBe('first');
    expect(s.list.entries).toContain('x');
  });

  it('resolves --from on the host and finds the tool-version file', async () => {
    const repo = await makeRepo('tools');
    writeFileSync(join(repo, '.mise.toml'), '[tools]\nnode = "20"\n');
    const s = await inspectWorkspace(runner, repo, { branch: 'b', from: 'HEAD' });
    expect(s.from).toBe(s.head);
    expect(s.toolConfig).toBe('.mise.toml');
  });
});

type Refusal = [string, () => string, { branch?: string; from?: string }, RegExp];

describe('inspectWorkspace: refusals, each before any VM exists', () => {
  it.each<Refusal>([
    ['missing', () => join(dir, 'nope'), {}, /does not exist/],
    ['a file', () => join(dir, 'plain', 'README'), {}, /is a file, not a directory/],
    ['a device', () => '/dev/null', {}, /is a device, not a directory/],
    ['--from without --branch', () => join(dir, 'plain'), { from: 'HEAD' }, /--from needs --branch/],
    ['an existing branch', () => join(dir, 'plain'), { branch: 'main' }, /branch main already exists/],
    ['a bad branch name', () => join(dir, 'plain'), { branch: 'a..b' }, /not a valid branch name/],
    ['--from naming no commit', () => join(dir, 'plain'), { branch: 'n', from: 'nope' }, /is not a commit/],
    ['--branch without git', () => dir, { branch: 'n' }, /needs a git repository/],
  ])('%s', async (_name, path, opts, message) => {
    await expect(inspectWorkspace(runner, path(), opts)).rejects.toThrow(message);
  });

  it('a broken .git', async () => {
    const broken = join(dir, 'broken');
    mkdirSync(join(broken, '.git'), { recursive: true });
    writeFileSync(join(broken, '.git', 'HEAD'), 'garbage\n');
    await expect(inspectWorkspace(runner, broken)).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringContaining('broken .git'),
    });
  });

  it('a .git that is a file (a linked worktree) or a symlink', async () => {
    const wt = join(dir, 'worktree');
    mkdirSync(wt);
    writeFileSync(join(wt, '.git'), 'gitdir: /elsewhere\n');
    await expect(inspectWorkspace(runner, wt)).rejects.toThrow(/\.git is a file/);
    const linked = join(dir, 'linked');
    mkdirSync(linked);
    symlinkSync(join(dir, 'plain', '.git'), join(linked, '.git'));
    await expect(inspectWorkspace(runner, linked)).rejects.toThrow(/\.git is a symlink/);
  });

  it('an unreadable directory (as a user without access)', async () => {
    if (process.getuid?.() === 0) {
      // root reads everything: run the check as nobody through a child that has dropped privileges.
      const locked = join(dir, 'locked');
      mkdirSync(locked, { mode: 0o700 });
      const r = await runner.run(
        [
          'setpriv',
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          'sh',
          '-c',
          `[ -r "${locked}" ] && [ -x "${locked}" ] && echo readable || echo refused`,
        ],
        { allowFailure: true },
      );
      expect(r.stdout.trim()).toBe('refused'); // the access check the service makes, as that user
    } else {
      const locked = join(dir, 'locked');
      mkdirSync(locked, { mode: 0o000 });
      await expect(inspectWorkspace(runner, locked)).rejects.toThrow(/cannot be read/);
    }
  });
});

describe('checkFits', () => {
  it('refuses a workspace larger than the work disk, naming what to do', async () => {
    const big = join(dir, 'big');
    mkdirSync(big);
    await runner.run(['truncate', '-s', '100M', join(big, 'sparse')]);
    const s = await inspectWorkspace(runner, big);
    expect(s.kind).toBe('dir');
    expect(() => checkFits(s, 64 * 1024 * 1024, 'use --disk-size')).toThrow(
      /needs about 100 MiB, more than the 64 MiB work disk holds/,
    );
    expect(() => checkFits(s, 1024 * 1024 * 1024, 'use --disk-size')).not.toThrow();
  });
});
