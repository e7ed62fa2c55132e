import { Writable } from 'node:stream';
import { BangerError, badRequest, notFound, operationFailed } from '../../../model/errors.js';
import { BAD_BASE, NO_GIT, NO_REPO, RESOLVE_BASE_SH } from './export-guest.js';
import { collector, type GuestExec } from './guest.js';

/**
 * The largest patch taken from a guest. The guest is untrusted and could send without end; a workspace's
 * changes, binary files included, are far below this, and a larger one says something is wrong.
 */
export const EXPORT_MAX_BYTES = 1024 * 1024 * 1024;
/** Under TCG, `git add -A` over a large tree takes a while; the bound is for a guest that never ends. */
export const EXPORT_TIMEOUT_MS = 30 * 60_000;
/**
 * Everything that differs between the base and the work tree, without touching the guest's index or its
 * objects: a copy of the index records the untracked files that are not ignored as intent-to-add
 * (`git add -N` of git's own list of them: no blob written, tracked files not looked at, so a change to a
 * thousand files costs hashing them once, not compressing them into the object store; with none, no
 * `git add` runs, which would read and rewrite the whole index for nothing), then a binary diff
 * of the work tree against the base. Renames, modes,
 * deletions and symlinks come out as git apply reads them; prefixes, renames and external diff tools are
 * fixed here so a guest's git config cannot change the patch's shape.
 */
export const EXPORT_SCRIPT = `${RESOLVE_BASE_SH}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ ! -f .git/index ] || cp .git/index "$tmp/index"
export GIT_INDEX_FILE="$tmp/index"
git ls-files -z --others --exclude-standard >"$tmp/new"
[ ! -s "$tmp/new" ] ||
  git -c advice.addEmptyPathspec=false add -N --pathspec-from-file="$tmp/new" --pathspec-file-nul
git -c core.quotePath=false diff --binary -M --no-color --no-ext-diff --no-textconv \\
  --no-relative --src-prefix=a/ --dst-prefix=b/ "$base" --
`;

/**
 * The guest-side diff (the fallback of exportWorkspace, and the bench's baseline): streams the patch into `out` (at most EXPORT_MAX_BYTES, past which the call fails and the
 * guest's connection is dropped); returns the bytes written. An empty change is an empty patch.
 */
export async function exportPatch(
  exec: GuestExec,
  guestDir: string,
  out: Writable,
  opts: { baseCommit?: string | undefined; vmName: string; maxBytes?: number },
): Promise<{ bytes: number }> {
  let bytes = 0;
  const counted = new Writable({
    write(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      out.write(chunk, () => done());
    },
  });
  const err = collector();
  const r = await exec(
    { argv: ['/bin/sh', '-c', EXPORT_SCRIPT, 'sh', guestDir, opts.baseCommit ?? ''] },
    {
      stdout: counted,
      stderr: err.sink,
      limit: {
        maxBytes: opts.maxBytes ?? EXPORT_MAX_BYTES,
        timeoutMs: EXPORT_TIMEOUT_MS,
        what: 'the workspace patch',
      },
    },
  );
  if (r.exitCode === 0) return { bytes };
  throw exportFailure(r, guestDir, opts.vmName, err.text());
}

/** The error for a failed export script (both halves share the exit codes of RESOLVE_BASE_SH). */
export function exportFailure(
  r: { exitCode: number | null; signal?: string | null | undefined },
  guestDir: string,
  vm: string,
  stderr: string,
): BangerError {
  if (r.exitCode === NO_REPO)
    return notFound(`VM ${vm} has no workspace at ${guestDir} (no git repository there)`, {
      hint: `banger vm workspace prepare ${vm} ./repo`,
    });
  if (r.exitCode === NO_GIT)
    return new BangerError('bad_request', `VM ${vm}'s image has no git, which export needs`);
  if (r.exitCode === BAD_BASE) return badRequest(stderr);
  return operationFailed(
    `exporting ${guestDir} from VM ${vm} failed (${r.signal ?? `exit ${r.exitCode}`}): ${stderr}`,
  );
}
