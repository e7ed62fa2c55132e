/**
 * The guest's half of a host-side export: a cheap listing of what changed (stat only, nothing hashed or
 * inflated, which under TCG is what made the guest-side diff slow) and a tar of those files as they are.
 * The host (export-host.ts) makes the patch from it. Exit codes shared with the guest-side diff (export.ts).
 */

export const NO_REPO = 66;
export const NO_GIT = 67;
export const BAD_BASE = 65;
/** The guest asks for the guest-side diff: something git would do to the content that the host cannot. */
export const GUEST_DIFF = 68;
/** git's empty tree: the base of a repository with no commit yet (everything is an addition). */
export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
/** The first line of the stream: `banger-export 1 <base oid>`. */
export const STREAM_MAGIC = 'banger-export 1 ';

/** Resolves the base in the guest (`$2`, else the prepared commit, else HEAD, else the empty tree) into $base. */
export const RESOLVE_BASE_SH = `
cd -- "$1" 2>/dev/null && [ -d .git ] || exit ${NO_REPO}
command -v git >/dev/null 2>&1 || exit ${NO_GIT}
set -e
if [ -n "$2" ]; then
  base=$(git rev-parse -q --verify "$2^{commit}") || { echo "--base-commit $2 is not a commit in the guest's repository" >&2; exit ${BAD_BASE}; }
else
  base=$(git rev-parse -q --verify 'refs/banger/workspace-base^{commit}') ||
    base=$(git rev-parse -q --verify 'HEAD^{commit}') || base=${EMPTY_TREE}
fi
`;

/**
 * Writes `banger-export 1 BASE\\n`, then every path that may differ from BASE, NUL-terminated, then an
 * empty record, then a tar of those that exist as a file or a symlink (a missing one is a deletion).
 * The list: `git diff-index` of BASE against the index and the work tree's stat data (a stat-dirty file is
 * listed without being read; the host finds it unchanged if it is), plus the untracked files that are not
 * ignored. Neither touches the index or the objects. The guest diffs itself instead (exit GUEST_DIFF) when
 * git would change content on its way in (autocrlf, text/eol/filter/ident/encoding attributes), when mode or
 * symlink handling is off, or when a path needs quoting (a newline would break tar's list).
 */
export const EXPORT_CHANGES_SCRIPT = `${RESOLVE_BASE_SH}
guest_diff() { echo "$1" >&2; exit ${GUEST_DIFF}; }
cfg=$(git config --get-regexp '^core\\.(autocrlf|attributesfile|filemode|symlinks)$' | tr 'A-Z' 'a-z') || true
case "$cfg" in
  *'autocrlf true'*|*'autocrlf input'*|*attributesfile*|*'filemode false'*|*'symlinks false'*)
    guest_diff "the guest's git config (core.autocrlf, core.fileMode, core.symlinks or core.attributesFile) changes content";;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -c core.quotePath=false diff-index --name-only --no-renames "$base" -- >"$tmp/list"
git -c core.quotePath=false ls-files --others --exclude-standard >>"$tmp/list"
! grep -q '^"' "$tmp/list" || guest_diff "a changed path has a character git quotes"
{ git -c core.quotePath=false ls-files -- '*.gitattributes'; grep '\\.gitattributes$' "$tmp/list" || true; echo .git/info/attributes; } >"$tmp/attrs"
while IFS= read -r a; do
  if [ -f "$a" ] && grep -qE 'filter|text|eol|crlf|ident|encoding' "$a"; then
    guest_diff "$a sets attributes that change content"
  fi
done <"$tmp/attrs"
while IFS= read -r p; do
  if [ -L "$p" ] || [ -f "$p" ]; then printf './%s\\n' "$p"; fi
done <"$tmp/list" >"$tmp/present"
printf '${STREAM_MAGIC}%s\\n' "$base"
tr '\\n' '\\000' <"$tmp/list"
printf '\\000'
[ ! -s "$tmp/present" ] || tar -cf - -T "$tmp/present"
`;
