import type { Runner } from '../../../host/index.js';
import { alreadyExists, BangerError, badRequest, operationFailed } from '../../../model/errors.js';
import { hostArchive } from './archive.js';
import { collector, type GuestExec, guestScript, SCRIPT_MAX_BYTES } from './guest.js';
import { removeWorkspaceRecord, writeWorkspaceRecord } from './record.js';
import type { WorkspaceSource } from './source.js';

/** A large tree under TCG takes minutes; the bound is for a guest that never lets the copy end (Ctrl-C also does). */
const COPY_TIMEOUT_MS = 60 * 60_000;
const EXISTS = 17;
const NO_GIT = 18;

/** What a copy-in did, for the caller to show. */
export interface CopyInResult {
  guestDir: string;
  /** The commit export diffs against by default (absent for a plain directory or a repository with no commit). */
  baseCommit?: string | undefined;
  branch?: string | undefined;
  /** Entries left out, one line each (special files, submodules). */
  skipped: string[];
}

const CLEAR_SCRIPT = `
if [ -e "$1" ] || [ -L "$1" ]; then
  [ "$2" = 1 ] || exit ${EXISTS}
  rm -rf -- "$1"
fi
mkdir -p -- "$1"
`;

/**
 * After the files: the guest's index learns the guest's file stats (so git status and export hash only what
 * changed), the branch asked for is made, and the prepared commit is kept as a ref export diffs against.
 */
const GIT_SCRIPT = `
set -e
cd -- "$1"
if ! command -v git >/dev/null 2>&1; then
  [ -z "$2" ] || { echo "the guest has no git, which --branch needs"; exit ${NO_GIT}; }
  exit 0
fi
git update-index -q --refresh >/dev/null 2>&1 || true
if [ -n "$2" ]; then
  if [ -n "$3" ]; then git checkout -q -f -b "$2" "$3"; else git checkout -q -b "$2"; fi
fi
if base=$(git rev-parse -q --verify 'HEAD^{commit}'); then
  git update-ref refs/banger/workspace-base "$base"
  echo "$base"
else
  git update-ref -d refs/banger/workspace-base >/dev/null 2>&1 || true
fi
`;

/**
 * Copies a checked workspace into the guest at guestDir: a tar stream from the host through the agent's
 * exec into `tar -x` (no ssh). An existing guestDir is an error unless `force` replaces it.
 */
export async function copyIn(
  runner: Runner,
  exec: GuestExec,
  source: WorkspaceSource,
  guestDir: string,
  opts: {
    force?: boolean;
    diskHint: string;
    /** The VM's directory: where the workspace record goes (export reads the base from the source). */
    recordDir?: string | undefined;
  },
): Promise<CopyInResult> {
  const clear = await guestScript(
    exec,
    CLEAR_SCRIPT,
    [guestDir, opts.force ? '1' : '0'],
    'the workspace check',
  );
  if (clear.code === EXISTS)
    throw alreadyExists(`${guestDir} already exists in the guest`, {
      hint: 'pass --force to replace it (what is in it is lost)',
    });
  if (clear.code !== 0) throw operationFailed(`preparing ${guestDir} in the guest failed: ${clear.output}`);

  const archive = hostArchive(runner, source.root, source.list.entries);
  const out = collector();
  let r: Awaited<ReturnType<GuestExec>>;
  try {
    r = await exec(
      { argv: ['/bin/sh', '-c', 'cd -- "$1" && exec tar -xf -', 'sh', guestDir] },
      {
        stdin: archive.stream,
        stdout: out.sink,
        stderr: out.sink,
        limit: { maxBytes: SCRIPT_MAX_BYTES, timeoutMs: COPY_TIMEOUT_MS, what: 'the workspace copy' },
      },
    );
  } catch (err) {
    archive.kill();
    throw err;
  }
  if (r.exitCode !== 0) {
    archive.kill();
    const why = out.text();
    if (/no space left/i.test(why))
      throw badRequest(`the workspace does not fit on the guest's work disk: ${why}`, {
        hint: opts.diskHint,
      });
    throw operationFailed(`copying ${source.root} into the guest failed: ${why}`);
  }
  await archive.done;

  if (source.kind !== 'git') {
    if (opts.recordDir) await removeWorkspaceRecord(opts.recordDir);
    return { guestDir, skipped: source.list.skipped };
  }
  const g = await guestScript(
    exec,
    GIT_SCRIPT,
    [guestDir, source.branch ?? '', source.from ?? ''],
    'the workspace git set-up',
  );
  if (g.code === NO_GIT) throw new BangerError('bad_request', g.output);
  if (g.code !== 0) throw operationFailed(`setting up git in ${guestDir} failed: ${g.output}`);
  const base = /^[0-9a-f]{40,64}$/.exec(g.output.split('\n').pop() ?? '')?.[0];
  if (opts.recordDir) await writeWorkspaceRecord(opts.recordDir, { source: source.root, baseCommit: base });
  return { guestDir, baseCommit: base, branch: source.branch, skipped: source.list.skipped };
}
