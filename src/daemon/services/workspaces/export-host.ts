import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { Runner, SpawnedProcess } from '../../../host/index.js';
import { operationFailed } from '../../../model/errors.js';
import { EMPTY_TREE } from './export-guest.js';
import type { ChangeSink } from './export-stream.js';

/** What git prints on failure is kept to this much for the error message. */
const STDERR_KEEP = 16 * 1024;

/**
 * A private bare repository in a temp dir that reads the user's objects through an alternate and writes
 * only its own: the user's repository (work tree, index, refs, config, hooks) is never touched, and the
 * global and system git config are not read either, so the patch has the same shape on every host.
 */
export interface PrivateRepo {
  dir: string;
  env: Record<string, string>;
  /** Whether the base (a commit, or the empty tree) is readable here, with its tree. */
  has(oid: string): Promise<boolean>;
  remove(): Promise<void>;
}

export async function openPrivateRepo(runner: Runner, sourceGitDir: string): Promise<PrivateRepo> {
  const dir = await mkdtemp(join(tmpdir(), 'banger-export-'));
  const gitDir = join(dir, 'repo.git');
  const env = {
    GIT_DIR: gitDir,
    GIT_OBJECT_DIRECTORY: join(gitDir, 'objects'),
    GIT_ALTERNATE_OBJECT_DIRECTORIES: join(sourceGitDir, 'objects'),
    GIT_INDEX_FILE: join(dir, 'index'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
  };
  try {
    await runner.run(['git', 'init', '-q', '--bare', gitDir], { env });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    env,
    async has(oid) {
      if (oid === EMPTY_TREE) return true;
      const r = await runner.run(['git', 'cat-file', '-e', `${oid}^{tree}`], { env, allowFailure: true });
      return r.exitCode === 0;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Writes to a child's stdin, waiting when its pipe is full; a dead child makes this reject. */
function writeIn(child: SpawnedProcess, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stdin = child.stdin;
    if (!stdin || stdin.destroyed) return reject(operationFailed('git fast-import is gone'));
    if (stdin.write(data)) return resolve();
    const go = (err?: Error) => {
      stdin.off('drain', ok);
      stdin.off('close', gone);
      if (err) reject(err);
      else resolve();
    };
    const ok = () => go();
    const gone = () => go(operationFailed('git fast-import is gone'));
    stdin.on('drain', ok);
    stdin.on('close', gone);
  });
}

function exited(child: SpawnedProcess, what: string): Promise<void> {
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (err.length < STDERR_KEEP) err += d.toString();
  });
  const p = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(operationFailed(`${what} failed (${signal ?? `exit ${code}`}): ${err.trim()}`));
    });
  });
  p.catch(() => {});
  return p;
}

/**
 * The guest's changes applied to the base as a commit in the private repository, by `git fast-import`:
 * each file's content becomes a blob as it streams in (hashed and compressed at native speed, never written
 * as a file), then one commit: the base's tree, listed paths the guest did not send deleted, sent ones set.
 * Guest paths only ever become tree entries, never paths on the host's file system.
 */
export function fastImport(
  runner: Runner,
  repo: PrivateRepo,
): ChangeSink & {
  /** Finishes the commit; resolves once fast-import has written it. */
  commit(): Promise<string>;
  kill(): void;
} {
  const child = runner.spawn(['git', 'fast-import', '--quiet', '--done', '--date-format=raw'], {
    pipe: true,
    env: repo.env,
  });
  child.stdin?.on('error', () => {}); // a dead fast-import: its exit says why
  const done = exited(child, 'git fast-import');
  let base = EMPTY_TREE;
  let paths: string[] = [];
  let marks = 0;
  const set = new Map<string, { mode: string; mark: number }>();
  return {
    async base(oid) {
      base = oid;
    },
    list(p) {
      paths = p;
    },
    async blob(path, mode, size, data) {
      const mark = ++marks;
      await writeIn(child, `blob\nmark :${mark}\ndata ${size}\n`);
      let got = 0;
      for await (const chunk of data) {
        got += chunk.length;
        await writeIn(child, chunk);
      }
      if (got !== size) throw operationFailed(`the guest's tar had ${got} bytes for ${path}, not ${size}`);
      await writeIn(child, '\n');
      set.set(path, { mode, mark });
    },
    hardlink(path, target) {
      const t = set.get(target);
      if (t) set.set(path, t);
    },
    async commit() {
      const lines = ['commit refs/heads/export', 'committer banger <banger@localhost> 0 +0000', 'data 0'];
      if (base !== EMPTY_TREE) lines.push(`from ${base}`);
      for (const p of paths) if (!set.has(p)) lines.push(`D ${p}`);
      for (const [p, { mode, mark }] of set) lines.push(`M ${mode} :${mark} ${p}`);
      lines.push('', 'done', '');
      await writeIn(child, Buffer.from(lines.join('\n'), 'latin1'));
      child.stdin?.end();
      await done;
      return 'refs/heads/export';
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}

/** The patch between the base and the imported commit, with the flags the guest-side diff uses. */
export async function writeDiff(
  runner: Runner,
  repo: PrivateRepo,
  base: string,
  head: string,
  out: Writable,
): Promise<number> {
  const child = runner.spawn(
    [
      'git',
      '-c',
      'core.quotePath=false',
      'diff',
      '--binary',
      '-M',
      '--no-color',
      '--no-ext-diff',
      '--no-textconv',
      '--src-prefix=a/',
      '--dst-prefix=b/',
      base,
      head,
      '--',
    ],
    { pipe: true, env: repo.env },
  );
  child.stdin?.end();
  const done = exited(child, 'git diff');
  let bytes = 0;
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
  }
  await done;
  return bytes;
}
