import { constants } from 'node:fs';
import { access, lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../../../host/index.js';
import { alreadyExists, badRequest } from '../../../model/errors.js';
import { formatSize } from '../../../model/sizes.js';
import { specialKind, type TreeList, walkTree } from './tree.js';

/** What the user asked for besides the path: a new branch in the guest, and where it starts. */
export interface WorkspaceOptions {
  branch?: string | undefined;
  from?: string | undefined;
}

/** A host directory checked and listed: everything a copy-in needs, known before any VM is made. */
export interface WorkspaceSource {
  /** Absolute host path (symlinks in it resolved: the user named it). */
  root: string;
  /** A git repository (has .git at its top) or a plain directory, copied whole. */
  kind: 'git' | 'dir';
  list: TreeList;
  /** git: HEAD's commit, absent on a branch with no commit yet. */
  head?: string | undefined;
  /** git: the branch to create in the guest, and the commit it starts from (resolved on the host). */
  branch?: string | undefined;
  from?: string | undefined;
  /** The tool-version file that asks for a mise bootstrap, when the workspace has one. */
  toolConfig?: string | undefined;
}

/** The files whose presence asks for `mise install` (spec §7.6). */
export const TOOL_CONFIG_FILES = ['.mise.toml', '.tool-versions'] as const;

/**
 * Host git, hardened against the repository it reads: fsmonitor is a command a repository's own config can
 * name, so it is switched off; nothing else we run (ls-files, rev-parse) runs hooks or filters.
 */
async function git(runner: Runner, root: string, args: string[]) {
  return runner.run(['git', '-C', root, '-c', 'core.fsmonitor=false', ...args], { allowFailure: true });
}

/**
 * Checks a host path for a workspace and lists what goes in: a git repository as git sees it (tracked
 * files and untracked ones that are not ignored, plus .git), any other directory whole. Every refusal is a
 * bad_request said before any VM exists.
 */
export async function inspectWorkspace(
  runner: Runner,
  path: string,
  opts: WorkspaceOptions = {},
): Promise<WorkspaceSource> {
  if (opts.from !== undefined && opts.branch === undefined)
    throw badRequest('--from needs --branch: it says where the new branch starts', {
      hint: 'banger vm run --branch NAME --from REF ./repo',
    });
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw badRequest(
      err.code === 'ENOENT'
        ? `workspace ${path} does not exist`
        : `workspace ${path} cannot be read: ${err.message}`,
    );
  });
  if (!st.isDirectory()) {
    const what = specialKind(st) ?? 'a file';
    throw badRequest(`workspace ${path} is ${what}, not a directory`, {
      hint: 'give the directory of a repository (or any directory), e.g. banger vm run ./repo',
    });
  }
  await access(path, constants.R_OK | constants.X_OK).catch(() => {
    throw badRequest(`workspace ${path} cannot be read (permission denied)`);
  });
  const root = await realpath(path);
  const dotGit = await lstat(join(root, '.git')).catch(() => undefined);
  if (!dotGit) {
    if (opts.branch !== undefined)
      throw badRequest(`--branch needs a git repository, and ${path} has no .git`);
    return { root, kind: 'dir', list: await walkTree(root), toolConfig: await toolConfig(root) };
  }
  if (!dotGit.isDirectory()) {
    throw badRequest(
      `${path}/.git is ${dotGit.isSymbolicLink() ? 'a symlink' : 'a file'} (a linked worktree or a submodule), which banger does not copy`,
      { hint: "give the repository's main checkout (where .git is a directory)" },
    );
  }
  return inspectRepo(runner, path, root, opts);
}

async function inspectRepo(
  runner: Runner,
  path: string,
  root: string,
  opts: WorkspaceOptions,
): Promise<WorkspaceSource> {
  const top = await git(runner, root, ['rev-parse', '--show-toplevel']);
  if (top.exitCode !== 0 || (await realpath(top.stdout.trim()).catch(() => '')) !== root) {
    const why =
      top.exitCode !== 0 ? top.stderr.trim().split('\n')[0] : `git sees its top at ${top.stdout.trim()}`;
    throw badRequest(`${path} has a broken .git: ${why}`, {
      hint: `check it with: git -C ${path} status`,
    });
  }
  const headR = await git(runner, root, ['rev-parse', '-q', '--verify', 'HEAD^{commit}']);
  const head = headR.exitCode === 0 ? headR.stdout.trim() : undefined;
  let from: string | undefined;
  if (opts.branch !== undefined) {
    const ok = await git(runner, root, ['check-ref-format', '--branch', opts.branch]);
    if (ok.exitCode !== 0)
      throw badRequest(`--branch ${JSON.stringify(opts.branch)} is not a valid branch name`);
    const exists = await git(runner, root, ['rev-parse', '-q', '--verify', `refs/heads/${opts.branch}`]);
    if (exists.exitCode === 0)
      throw alreadyExists(`branch ${opts.branch} already exists in ${path}`, {
        hint: '--branch creates a new branch: pick a new name (without --branch the current branch is used)',
      });
    if (opts.from !== undefined) {
      const r = await git(runner, root, ['rev-parse', '-q', '--verify', `${opts.from}^{commit}`]);
      if (r.exitCode !== 0) throw badRequest(`--from ${opts.from} is not a commit of ${path}`);
      from = r.stdout.trim();
    }
  }
  const listed = await git(runner, root, ['ls-files', '-z', '--cached', '--others', '--exclude-standard']);
  if (listed.exitCode !== 0)
    throw badRequest(`${path} has a broken .git: ${listed.stderr.trim().split('\n')[0]}`);
  const files = await listGitFiles(root, listed.stdout.split('\0').filter(Boolean));
  files.skipped.push(...(await specialFilesBeside(runner, root, files.entries)));
  const dotGit = await walkTree(root, '.git');
  return {
    root,
    kind: 'git',
    list: {
      entries: [...dotGit.entries, ...files.entries],
      bytes: dotGit.bytes + files.bytes,
      skipped: [...files.skipped, ...dotGit.skipped],
    },
    head,
    branch: opts.branch,
    from,
    toolConfig: await toolConfig(root),
  };
}

/**
 * The paths git listed, checked on disk without following links: a path under a symlinked directory (an
 * index entry whose parent became a link to /etc, say) is skipped, never read through the link; a tracked
 * file deleted from the work tree is left out (the guest sees it deleted too); a submodule or nested
 * repository (a directory) and special files are skipped with a notice. Parent directories come first.
 */
export async function listGitFiles(root: string, paths: readonly string[]): Promise<TreeList> {
  const out: TreeList = { entries: [], bytes: 0, skipped: [] };
  const dirs = new Map<string, boolean>(); // relative dir -> is a real directory (not a link)
  const realDir = async (dir: string): Promise<boolean> => {
    const known = dirs.get(dir);
    if (known !== undefined) return known;
    const slash = dir.lastIndexOf('/');
    let ok = slash < 0 || (await realDir(dir.slice(0, slash)));
    if (ok) ok = (await lstat(join(root, dir)).catch(() => undefined))?.isDirectory() ?? false;
    dirs.set(dir, ok);
    if (ok) out.entries.push(dir);
    return ok;
  };
  for (const path of new Set(paths)) {
    if (path.endsWith('/')) {
      out.skipped.push(`${path.slice(0, -1)} (a nested git repository)`);
      continue;
    }
    const slash = path.lastIndexOf('/');
    if (slash >= 0 && !(await realDir(path.slice(0, slash)))) {
      const exists = await lstat(join(root, path.slice(0, slash))).catch(() => undefined);
      if (exists) out.skipped.push(`${path} (under a symlink or non-directory; not followed)`);
      continue;
    }
    const st = await lstat(join(root, path)).catch(() => undefined);
    if (!st) continue;
    const special = specialKind(st);
    if (special) out.skipped.push(`${path} (${special})`);
    else if (st.isDirectory()) out.skipped.push(`${path} (a submodule; not copied)`);
    else {
      out.entries.push(path);
      if (st.isFile()) out.bytes += st.size;
    }
  }
  return out;
}

/**
 * git lists no FIFO, socket or device, so it would be left out without a word: the directories that hold
 * listed files are read once more for such entries that are not ignored, to name them for the user.
 */
async function specialFilesBeside(
  runner: Runner,
  root: string,
  entries: readonly string[],
): Promise<string[]> {
  const dirs = new Set(['']);
  for (const e of entries) {
    const slash = e.lastIndexOf('/');
    dirs.add(slash < 0 ? '' : e.slice(0, slash));
  }
  const found: { path: string; kind: string }[] = [];
  for (const dir of dirs) {
    const children = await readdir(join(root, dir), { withFileTypes: true }).catch(() => []);
    for (const c of children) {
      const kind = specialKind(c);
      if (kind) found.push({ path: dir ? `${dir}/${c.name}` : c.name, kind });
    }
  }
  if (found.length === 0) return [];
  const ignored = await runner.run(
    ['git', '-C', root, '-c', 'core.fsmonitor=false', 'check-ignore', '-z', '--stdin'],
    { input: `${found.map((f) => f.path).join('\0')}\0`, allowFailure: true },
  );
  const skip = new Set(ignored.stdout.split('\0'));
  return found.filter((f) => !skip.has(f.path)).map((f) => `${f.path} (${f.kind})`);
}

async function toolConfig(root: string): Promise<string | undefined> {
  for (const name of TOOL_CONFIG_FILES) {
    if ((await lstat(join(root, name)).catch(() => undefined))?.isFile()) return name;
  }
  return undefined;
}

/**
 * Refuses a workspace the work disk cannot hold: its files, a block of metadata each, within the ~90 % of
 * the disk that ext4 leaves for files (journal, inode tables, reserved blocks).
 */
export function checkFits(source: WorkspaceSource, diskSizeBytes: number, hint: string): void {
  const needed = source.list.bytes + source.list.entries.length * 4096;
  if (needed > diskSizeBytes * 0.9) {
    throw badRequest(
      `workspace ${source.root} needs about ${formatSize(needed)}, more than the ${formatSize(diskSizeBytes)} work disk holds`,
      { hint },
    );
  }
}
