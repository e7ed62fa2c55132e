import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../../../config/index.js';
import type { Runner } from '../../../host/index.js';
import { operationFailed } from '../../../model/errors.js';
import { formatSize } from '../../../model/sizes.js';
import { hostArchive } from './archive.js';
import { collector, type GuestExec, guestScript, SCRIPT_MAX_BYTES, SCRIPT_TIMEOUT_MS } from './guest.js';
import { walkTree } from './tree.js';

/** A file_sync file is read whole into memory; a larger one belongs in a synced directory (streamed). */
export const FILE_SYNC_MAX_FILE_BYTES = 64 * 1024 * 1024;
const GUEST_HOME = '/root';

export interface HostFilesDeps {
  runner: Runner;
  /** The home `~/` means on the host (the daemon's owner's); without one such entries are skipped. */
  home?: string | undefined;
  config: Pick<Config, 'git_identity' | 'file_sync'>;
}

/** What the guest agent offers that host files need beyond exec. */
export interface GuestFiles {
  exec: GuestExec;
  writeFile(path: string, data: Buffer, opts: { mode: number; uid: number; gid: number }): Promise<void>;
}

export type Notice = { level: 'info' | 'warn'; message: string };

/** `~/x` against a home; anything else as it is (the config schema allowed only `~/` or absolute). */
export const expandHome = (path: string, home: string) =>
  path.startsWith('~/') ? join(home, path.slice(2)) : path;

/**
 * Only a banger guest gets host files: the VM service's own tests run the agent on the host itself, whose
 * /root must never be written (the same guard as the work-disk mount).
 */
const GUARD_SCRIPT = `read -r c </proc/cmdline; case " $c " in *" banger.hostname="*) exit 0 ;; esac; exit 1`;

/**
 * The git identity into /root/.gitconfig from the script's positional parameters $1 (user.name) and $2
 * (user.email), never spliced into the text; nothing where the guest has no git. A fork's identity script
 * carries it too (one agent round trip for both).
 */
export const GIT_IDENTITY_SH = `if command -v git >/dev/null 2>&1; then
[ -z "$1" ] || git config --file /root/.gitconfig user.name "$1"
[ -z "$2" ] || git config --file /root/.gitconfig user.email "$2"
fi`;

/** The host user's git identity (empty strings where unset). */
export interface GitIdentity {
  name: string;
  email: string;
}

/** Reads the host user's git user.name and user.email (`git config --global`); undefined when neither is set. */
export async function readGitIdentity(runner: Runner): Promise<GitIdentity | undefined> {
  const get = async (key: string) => {
    const r = await runner.run(['git', 'config', '--global', '--get', key], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout.trim() : '';
  };
  const [name, email] = await Promise.all([get('user.name'), get('user.email')]);
  return name || email ? { name, email } : undefined;
}

/**
 * At every start: the host user's git identity into the guest's /root/.gitconfig (unless git_identity is
 * off), then each [[file_sync]] entry (a missing host path is a warning; anything else fails the start).
 */
export async function applyHostFiles(
  deps: HostFilesDeps,
  guest: GuestFiles,
  /**
   * The caller checked the same guard (the VM start script does): no exec of its own to ask again. With
   * `gitIdentityApplied` the caller wrote the git identity itself (a fork's identity script carries it).
   */
  known?: { bangerGuest: boolean; gitIdentityApplied?: boolean },
): Promise<Notice[]> {
  const { config } = deps;
  const gitIdentity = config.git_identity && !known?.gitIdentityApplied;
  if (!gitIdentity && config.file_sync.length === 0) return [];
  const bangerGuest =
    known?.bangerGuest ?? (await guestScript(guest.exec, GUARD_SCRIPT, [], 'the guest check')).code === 0;
  if (!bangerGuest) return [];
  const notices: Notice[] = [];
  if (gitIdentity) await copyGitIdentity(deps.runner, guest.exec);
  for (const [i, entry] of config.file_sync.entries()) {
    if (entry.host.startsWith('~/') && !deps.home) {
      notices.push({
        level: 'warn',
        message: `file_sync[${i}]: no home directory for ${entry.host}; skipped`,
      });
      continue;
    }
    const host = expandHome(entry.host, deps.home ?? '/');
    const guestPath = expandHome(entry.guest, GUEST_HOME);
    const st = await stat(host).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw operationFailed(`file_sync[${i}]: cannot read ${host}: ${err.message}`);
    });
    if (!st) {
      notices.push({ level: 'warn', message: `file_sync[${i}]: ${host} does not exist; skipped` });
      continue;
    }
    if (st.isDirectory()) await syncDirectory(deps.runner, guest.exec, host, guestPath, i);
    else if (st.isFile()) {
      if (st.size > FILE_SYNC_MAX_FILE_BYTES)
        throw operationFailed(
          `file_sync[${i}]: ${host} is ${formatSize(st.size)}, over the ${formatSize(FILE_SYNC_MAX_FILE_BYTES)} a synced file may be`,
          { hint: 'sync the directory that holds it instead (directories are streamed)' },
        );
      const parent = await guestScript(guest.exec, 'mkdir -p -- "$1"', [dirname(guestPath)], 'file_sync');
      if (parent.code !== 0) throw operationFailed(`file_sync[${i}]: ${parent.output}`);
      const mode = Number.parseInt(entry.mode ?? '0600', 8);
      await guest.writeFile(guestPath, await readFile(host), { mode, uid: 0, gid: 0 });
    } else
      notices.push({
        level: 'warn',
        message: `file_sync[${i}]: ${host} is not a file or directory; skipped`,
      });
  }
  return notices;
}

async function copyGitIdentity(runner: Runner, exec: GuestExec): Promise<void> {
  const git = await readGitIdentity(runner);
  if (!git) return;
  const r = await guestScript(exec, GIT_IDENTITY_SH, [git.name, git.email], 'the git identity');
  if (r.code !== 0) throw operationFailed(`writing /root/.gitconfig in the guest failed: ${r.output}`);
}

async function syncDirectory(runner: Runner, exec: GuestExec, host: string, guestPath: string, i: number) {
  const list = await walkTree(host);
  const archive = hostArchive(runner, host, list.entries);
  const out = collector();
  const r = await exec(
    { argv: ['/bin/sh', '-c', 'mkdir -p -- "$1" && cd -- "$1" && exec tar -xf -', 'sh', guestPath] },
    {
      stdin: archive.stream,
      stdout: out.sink,
      stderr: out.sink,
      limit: { maxBytes: SCRIPT_MAX_BYTES, timeoutMs: SCRIPT_TIMEOUT_MS, what: `file_sync[${i}]` },
    },
  );
  if (r.exitCode !== 0) {
    archive.kill();
    throw operationFailed(`file_sync[${i}]: copying ${host} to ${guestPath} failed: ${out.text()}`);
  }
  await archive.done;
}
