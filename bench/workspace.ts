// Workspace copy-in and export on one VM under QEMU TCG (Alpine + the host's git, agent over virtio-serial).
// Copy-in: `banger vm workspace prepare VM REPO --force` (git listing on the host, tar through the agent,
// the guest's index refreshed) against the baseline `tar -c REPO | banger vm exec VM -- tar -x` of the same
// directory (.git included, so the same bytes), alternating, BENCH_ROUNDS rounds each. Export: a change to
// 1 000 files, `banger vm workspace export VM -o FILE` (the host-side diff), wall time of the CLI call,
// against the guest-side diff (the old export script through `banger vm exec`), alternating; the two
// patches must be identical.
// BENCH_FILES / BENCH_MB size the repository (default 10 000 files, 200 MB); BENCH_SKIP_COPY=1 skips the copy.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { EXPORT_SCRIPT } from '../src/daemon/services/workspaces/export.js';
import { createRunner } from '../src/host/index.js';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import { addHostGit } from '../test/fixtures/git-guest.js';
import { buildGuestRoot, registerImage, writeInstanceConfig } from '../test/fixtures/guest-root.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { median } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const MB = Number(process.env.BENCH_MB ?? 200);
const CHANGED = Math.min(1000, FILES);
/**
 * BENCH_PROFILE=1: where the export's time goes in the guest. Each step of the export script (and the parts
 * of its diff: hashing the changed files, inflating their base blobs, reading them) timed alone, on a copy
 * of the index as the export uses, then git's own breakdown of the diff (GIT_TRACE_PERFORMANCE).
 */
const PROFILE_SCRIPT = `
cd /root/repo
t() { awk '{print $1}' /proc/uptime; }
step() { a=$(t); "$@" >/tmp/out 2>/tmp/err; b=$(t); echo "$(awk "BEGIN{print $b-$a}") s  $(wc -c </tmp/out)B  $*" | cut -c1-120; }
base=$(git rev-parse refs/banger/workspace-base)
tmp=$(mktemp -d); cp .git/index $tmp/index; export GIT_INDEX_FILE=$tmp/index
git diff --name-only $base -- >$tmp/names
git diff --raw --abbrev=40 $base -- | awk '{print $3}' >$tmp/oids
step git ls-files -z --others --exclude-standard
step git diff-index --name-only --no-renames $base --
step sh -c "git diff-index --name-only --no-renames $base -- | sed 's|^|./|' | tar -cf - -T -"
step sh -c "git ls-files -z --others --exclude-standard | git -c advice.addEmptyPathspec=false add -N --pathspec-from-file=- --pathspec-file-nul"
step git diff --name-only $base --
step git diff --binary -M --no-color $base --
step git diff --binary --no-renames --no-color $base --
step sh -c "git hash-object --stdin-paths --no-filters <$tmp/names"
step sh -c "git cat-file --batch <$tmp/oids"
step sh -c "xargs cat <$tmp/names"
step sh -c "xargs tar -cf - <$tmp/names"
GIT_TRACE_PERFORMANCE=$tmp/perf git diff --binary -M $base -- >/dev/null; sed 's/^.*performance: //' $tmp/perf | cut -c1-120
rm -rf $tmp /tmp/out /tmp/err
git --version
`;
const runner = createRunner();
const kernel = await ensureTestKernel();
const fx = createNetnsFixture(runner);
const ns = await fx.createNetns('wsbench');
const work = await fx.tempDir();
const inst = createInstance();
const banger = join(REPO_ROOT, 'bin', 'banger');

async function cli(args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await execa(process.execPath, [banger, ...args], { env: inst.env, reject: false });
  if (r.exitCode !== 0) throw new Error(`banger ${args.join(' ')} failed: ${r.stderr}`);
  return performance.now() - t0;
}

/** The baseline: GNU tar on the host piped into `banger vm exec … tar -x`, into a fresh directory. */
async function baseline(repo: string): Promise<number> {
  const t0 = performance.now();
  const r = await execa(
    'sh',
    [
      '-c',
      `tar -C "$1" -cf - . | "$2" "$3" vm exec bench -- sh -c 'rm -rf /root/base && mkdir /root/base && tar -x -f - -C /root/base'`,
      'sh',
      repo,
      process.execPath,
      banger,
    ],
    { env: inst.env, reject: false },
  );
  if (r.exitCode !== 0) throw new Error(`baseline failed: ${r.stderr}`);
  return performance.now() - t0;
}

try {
  const rootfs = await buildGuestRoot(runner, work, '128M', (tree) => addHostGit(runner, tree));
  await mkdir(join(inst.home, 'config'), { recursive: true });
  await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  writeInstanceConfig(inst.home, ns, fx.id.slice(6));
  registerImage(inst.home, {
    name: 'alpine',
    rootfsPath: rootfs,
    kernelPath: kernel.kernelPath,
    initrdPath: kernel.initrdPath,
    env: ['PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
  });

  // The repository: FILES files of MB/FILES each, in 100 directories, committed.
  const repo = join(work, 'repo');
  const size = Math.floor((MB * 1024 * 1024) / FILES);
  for (let i = 0; i < FILES; i++) {
    const dir = join(repo, `d${i % 100}`);
    if (i < 100) mkdirSync(dir, { recursive: true });
    // Text in 64-byte lines, as source is: a one-line change is a one-hunk diff.
    const hex = randomBytes(Math.ceil(size / 2)).toString('hex');
    writeFileSync(join(dir, `f${i}.txt`), `${hex.replace(/(.{63})/g, '$1\n')}\n`);
  }
  const git = (...a: string[]) =>
    runner.run(['git', '-C', repo, '-c', 'user.name=b', '-c', 'user.email=b@e', ...a], {
      timeoutMs: 600_000,
    });
  await git('init', '-q', '-b', 'main');
  await git('add', '.');
  // No background auto-gc racing the copy (it packs and removes loose objects while they are read).
  await git('-c', 'gc.auto=0', 'commit', '-q', '-m', 'bench');
  await git('gc', '-q');
  const du = (await runner.run(['du', '-sm', repo])).stdout.split('\t')[0];

  await cli(['vm', 'run', '-d', '--name', 'bench', '--memory', '1024', '--disk-size', '3G', repo]);
  const prepare: number[] = [];
  const base: number[] = [];
  // BENCH_SKIP_COPY=1 measures the export only (the copy rounds take minutes under TCG).
  for (let i = 0; i < (process.env.BENCH_SKIP_COPY === '1' ? 0 : ROUNDS); i++) {
    base.push(await baseline(repo));
    prepare.push(await cli(['vm', 'workspace', 'prepare', 'bench', repo, '--force']));
  }

  // The change: CHANGED files edited (a line appended each), then exported.
  await cli([
    'vm',
    'exec',
    'bench',
    '--',
    'sh',
    '-c',
    `cd /root/repo && i=0; for f in d*/f*.txt; do [ $i -ge ${CHANGED} ] && break; echo changed >> "$f"; i=$((i+1)); done`,
  ]);
  // Baseline: the guest-side diff (the export before the host did the diff, now its fallback), run through
  // `vm exec` with the same script, alternating with the export.
  const exports: number[] = [];
  const guestDiffs: number[] = [];
  const patch = join(work, 'p.patch');
  const oldPatch = join(work, 'old.patch');
  const guestDiff = async (): Promise<number> => {
    const t0 = performance.now();
    const r = await execa(
      process.execPath,
      [banger, 'vm', 'exec', 'bench', '--', '/bin/sh', '-c', EXPORT_SCRIPT, 'sh', '/root/repo', ''],
      { env: inst.env, reject: false, stdout: { file: oldPatch } },
    );
    if (r.exitCode !== 0) throw new Error(`guest-side diff failed: ${r.stderr}`);
    return performance.now() - t0;
  };
  for (let i = 0; i < ROUNDS; i++) {
    guestDiffs.push(await guestDiff());
    exports.push(await cli(['vm', 'workspace', 'export', 'bench', '-o', patch]));
  }
  if (readFileSync(patch, 'utf8') !== readFileSync(oldPatch, 'utf8'))
    throw new Error('the host-side export and the guest-side diff made different patches');
  if (process.env.BENCH_PROFILE === '1') {
    // Where the export's time goes in the guest: each step of the export script timed on its own.
    const r = await execa(
      process.execPath,
      [banger, 'vm', 'exec', 'bench', '--', 'sh', '-c', PROFILE_SCRIPT],
      { env: inst.env, reject: false },
    );
    process.stdout.write(`guest profile (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}\n`);
  }
  const trivial: number[] = [];
  for (let i = 0; i < ROUNDS; i++) trivial.push(await cli(['vm', 'exec', 'bench', '--', 'true']));

  const b = base.length ? median(base) : Number.NaN;
  const p = prepare.length ? median(prepare) : Number.NaN;
  process.stdout.write(
    `Repository: ${FILES} files, ${MB} MB of content (${du} MB on disk with .git); ${ROUNDS} rounds, alternating; QEMU TCG, 1 vCPU.\n\n`,
  );
  process.stdout.write('| case | median ms | ratio |\n|---|---:|---:|\n');
  process.stdout.write(`| baseline: tar -c \\| banger vm exec -- tar -x | ${b.toFixed(0)} | 1.00 |\n`);
  process.stdout.write(`| banger vm workspace prepare --force | ${p.toFixed(0)} | ${(p / b).toFixed(2)} |\n`);
  const g = median(guestDiffs);
  const e = median(exports);
  process.stdout.write(
    `\nExport of ${CHANGED} changed files (${(statSync(patch).size / 1024).toFixed(0)} KiB patch, identical both ways); load ${(loadavg()[0] ?? 0).toFixed(1)}:\n\n`,
  );
  process.stdout.write('| case | median ms | ratio |\n|---|---:|---:|\n');
  process.stdout.write(
    `| baseline: guest-side diff (vm exec of the old export script) | ${g.toFixed(0)} | 1.00 |\n`,
  );
  process.stdout.write(
    `| banger vm workspace export (host-side diff) | ${e.toFixed(0)} | ${(e / g).toFixed(2)} |\n`,
  );
  process.stdout.write(
    `| banger vm exec -- true (CLI + agent floor) | ${median(trivial).toFixed(0)} | - |\n`,
  );
} finally {
  await execa(process.execPath, [banger, 'vm', 'delete', 'bench'], { env: inst.env, reject: false });
  await execa(process.execPath, [banger, 'daemon', 'stop'], { env: inst.env, reject: false });
  await inst.cleanup();
  await fx.cleanup();
}
