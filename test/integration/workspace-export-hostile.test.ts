/**
 * The host-side workspace export against a hostile guest: the stand-in agent (test/fixtures/hostile-agent.mjs)
 * answers the export's exec with a crafted stream (header, path list, tar), and the host must refuse bad
 * paths and oversized streams, never follow a guest symlink, and leave the user's repository and the host's
 * file system as they were (the private temp repository removed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import tarStream from 'tar-stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportWorkspace, MAX_CHANGED_PATHS } from '../../src/daemon/services/workspaces/index.js';
import { type AgentClient, connectAgent } from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';
import { REPO_ROOT } from '../fixtures/banger-instance.js';

const HOSTILE_AGENT = join(REPO_ROOT, 'test', 'fixtures', 'hostile-agent.mjs');
const runner = createRunner();

type Member =
  | { name: string; type: 'file'; content: string | Buffer; mode?: number }
  | { name: string; type: 'symlink'; target: string }
  | { name: string; type: 'directory' };

async function tarOf(members: Member[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const m of members) {
    if (m.type === 'file') pack.entry({ name: m.name, mode: m.mode ?? 0o644 }, m.content);
    else if (m.type === 'symlink') pack.entry({ name: m.name, type: 'symlink', linkname: m.target });
    else pack.entry({ name: m.name, type: 'directory', mode: 0o755 });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

describe('host-side workspace export against a hostile guest', () => {
  let work: string;
  let repo: string;
  let base: string;
  let outside: string;
  const oldTmp = process.env.TMPDIR;
  let n = 0;
  const agents: ChildProcess[] = [];
  const clients: AgentClient[] = [];
  const git = (...args: string[]) =>
    runner.run(['git', '-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args]);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'banger-ws-hostile-'));
    // The private repositories go here, so the test can see that none is left behind.
    mkdirSync(join(work, 'tmp'));
    process.env.TMPDIR = join(work, 'tmp');
    outside = join(work, 'outside');
    mkdirSync(outside);
    repo = join(work, 'repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'a.txt'), 'a\n');
    await git('init', '-q', '-b', 'main');
    await git('add', '.');
    await git('commit', '-q', '-m', 'one');
    base = (await git('rev-parse', 'HEAD')).stdout.trim();
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    for (const a of agents.splice(0)) a.kill('SIGKILL');
  });

  afterAll(async () => {
    if (oldTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = oldTmp;
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs the export against a guest whose exec replies `list` (NUL-separated) then `tar`. */
  async function exportFrom(
    list: string[],
    tar: Buffer,
    opts: { maxBytes?: number; header?: string } = {},
  ): Promise<string> {
    const reply = join(work, `reply-${n}`);
    const header = opts.header ?? `banger-export 1 ${base}\n`;
    writeFileSync(
      reply,
      Buffer.concat([
        Buffer.from(header),
        Buffer.from(list.map((p) => `${p}\0`).join('')),
        Buffer.from([0]),
        tar,
      ]),
    );
    const socketPath = join(work, `a${n++}.sock`);
    const agent = spawn(
      process.execPath,
      [HOSTILE_AGENT, 'ok', `replay:${reply}`, '--listen-unix', socketPath],
      {
        stdio: 'ignore',
      },
    );
    agents.push(agent);
    while (!existsSync(socketPath)) await sleep(20);
    const client = await connectAgent({ kind: 'virtio-serial', socketPath });
    clients.push(client);
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(c: Buffer, _e, done) {
        chunks.push(c);
        done();
      },
    });
    try {
      await exportWorkspace(runner, (req, io) => client.exec(req, io).wait(), '/root/repo', out, {
        vmName: 'hostile',
        source: repo,
        maxBytes: opts.maxBytes,
      });
      return Buffer.concat(chunks).toString();
    } finally {
      // Whatever happened: no private repository left, nothing written outside, the user's repo untouched.
      expect(readdirSync(join(work, 'tmp'))).toEqual([]);
      expect(readdirSync(outside)).toEqual([]);
      expect((await git('status', '--porcelain')).stdout).toBe('');
      expect(readdirSync(join(repo, '.git', 'hooks')).filter((f) => !f.endsWith('.sample'))).toEqual([]);
    }
  }

  it('an honest stream makes the patch (the harness itself is sound)', async () => {
    const patch = await exportFrom(
      ['a.txt', 'b.txt'],
      await tarOf([{ name: './b.txt', type: 'file', content: 'b\n', mode: 0o755 }]),
    );
    expect(patch).toContain('deleted file mode 100644');
    expect(patch).toContain('new file mode 100755');
    expect(patch).toContain('+++ b/b.txt');
  });

  const refused: { what: string; list: string[]; members: Member[]; error: RegExp }[] = [
    {
      what: 'a ../ path',
      list: ['../escape.txt'],
      members: [{ name: '../escape.txt', type: 'file', content: 'x' }],
      error: /bad export stream: a path with an empty, \. or \.\. component \(\.\.\/escape\.txt\)/,
    },
    {
      what: 'an absolute path',
      list: ['/etc/passwd'],
      members: [{ name: '/etc/passwd', type: 'file', content: 'x' }],
      error: /bad export stream: an absolute path \(\/etc\/passwd\)/,
    },
    {
      what: 'a .git/hooks path',
      list: ['.git/hooks/post-checkout'],
      members: [{ name: '.git/hooks/post-checkout', type: 'file', content: '#!/bin/sh\n', mode: 0o755 }],
      error: /bad export stream: a path into \.git \(\.git\/hooks\/post-checkout\)/,
    },
    {
      what: 'a .GIT path (a case-insensitive checkout reads it as .git)',
      list: ['sub/.GIT/config'],
      members: [],
      error: /a path into \.git/,
    },
    {
      what: 'a member that was not listed',
      list: ['a.txt'],
      members: [{ name: 'other.txt', type: 'file', content: 'x' }],
      error: /a member that was not listed \("other\.txt"\)/,
    },
    {
      what: 'a directory member',
      list: ['d'],
      members: [{ name: 'd', type: 'directory' }],
      error: /a member of type directory \(d\): only files and symlinks are exported/,
    },
  ];
  for (const c of refused) {
    it(`${c.what}: refused, nothing written`, async () => {
      await expect(exportFrom(c.list, await tarOf(c.members))).rejects.toThrow(c.error);
    });
  }

  it('a bad header is refused', async () => {
    await expect(exportFrom([], Buffer.alloc(0), { header: 'banger-export 1 ../../x\n' })).rejects.toThrow(
      /a bad header line/,
    );
  });

  it('a list of more paths than the cap is refused', async () => {
    const list = Array.from({ length: MAX_CHANGED_PATHS + 1 }, (_, i) => `f${i}`);
    await expect(exportFrom(list, Buffer.alloc(0))).rejects.toThrow(
      `bad export stream: more than ${MAX_CHANGED_PATHS} changed paths`,
    );
  });

  it('a file under a file is refused', async () => {
    await expect(
      exportFrom(
        ['f', 'f/x'],
        await tarOf([
          { name: 'f', type: 'file', content: 'f' },
          { name: 'f/x', type: 'file', content: 'x' },
        ]),
      ),
    ).rejects.toThrow('bad export stream: a member under a file (f/x)');
  });

  it('an oversized stream is cut off at the cap', async () => {
    const big = await tarOf([{ name: 'big.bin', type: 'file', content: Buffer.alloc(1024 * 1024, 7) }]);
    await expect(exportFrom(['big.bin'], big, { maxBytes: 64 * 1024 })).rejects.toThrow(
      /more than 64 KiB for the workspace changes/,
    );
  });

  it('a symlink, then a file through it: the link is exported as a link, the file is never written', async () => {
    const patch = await exportFrom(
      ['l', 'l/x'],
      await tarOf([
        { name: 'l', type: 'symlink', target: outside },
        { name: 'l/x', type: 'file', content: 'through the link\n' },
      ]),
    );
    expect(patch).toContain('new file mode 120000');
    expect(patch).toContain(`+${outside}`);
    expect(patch).not.toContain('through the link');
    expect(patch).not.toContain('b/l/x');
  });
});
