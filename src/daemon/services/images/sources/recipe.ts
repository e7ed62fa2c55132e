import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { RecipeEntry } from '../../../../catalog/images/index.js';
import type { Runner } from '../../../../host/index.js';
import { badRequest } from '../../../../model/errors.js';
import type { ProgressSink } from '../../../../model/progress.js';
import { unmountUnder } from '../mounts.js';

/** debootstrap leaves only `<suite> main` in sources.list; security updates need their own line. */
function sourcesList(e: RecipeEntry): string {
  const security = e.mirror.replace(/\/debian\/?$/, '/debian-security');
  return [
    `deb ${e.mirror} ${e.suite} main`,
    `deb ${e.mirror} ${e.suite}-updates main`,
    ...(security !== e.mirror ? [`deb ${security} ${e.suite}-security main`] : []),
    '',
  ].join('\n');
}

/** The recipe's identity: a change to any field makes a new cache key. */
export function recipeKey(e: RecipeEntry): string {
  const text = JSON.stringify([
    e.builder,
    e.suite,
    e.mirror,
    e.variant,
    e.packages,
    ...(e.socketActivated.length ? [e.socketActivated] : []),
  ]);
  return `${e.name}-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
}

/**
 * Runs debootstrap for a recipe into `tree` and tidies what it leaves: the downloaded .debs, apt lists,
 * and the build host's machine-id (systemd makes a fresh one on first boot when the file is empty).
 */
async function debootstrap(runner: Runner, e: RecipeEntry, tree: string, signal?: AbortSignal) {
  const argv = ['debootstrap', `--variant=${e.variant}`];
  if (e.packages.length > 0) argv.push(`--include=${e.packages.join(',')}`);
  argv.push(e.suite, tree, e.mirror);
  await runner.run(argv, { signal, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  await writeFile(join(tree, 'etc', 'apt', 'sources.list'), sourcesList(e));
  await runner.run(['find', join(tree, 'var/cache/apt/archives'), '-name', '*.deb', '-delete'], { signal });
  await runner.run(['find', join(tree, 'var/lib/apt/lists'), '-maxdepth', '1', '-type', 'f', '-delete'], {
    signal,
  });
  await writeFile(join(tree, 'etc', 'machine-id'), '');
  await leaveToSockets(tree, e.socketActivated);
}

/** Removes a service's boot-time `*.wants/` links (its package's postinst made them); its socket stays. */
async function leaveToSockets(tree: string, services: readonly string[]): Promise<void> {
  if (services.length === 0) return;
  const base = join(tree, 'etc', 'systemd', 'system');
  for (const dir of await readdir(base).catch(() => [])) {
    if (!dir.endsWith('.wants')) continue;
    for (const svc of services) await rm(join(base, dir, svc), { force: true });
  }
}

/**
 * Builds the recipe's root filesystem as one tarball (the layer handed to the rootfs builder). debootstrap
 * needs root (it chroots and makes device nodes). With a cache directory the tarball is kept under the
 * recipe's key and reused, which the test suite uses to build the default image once per machine.
 */
export async function recipeTarball(o: {
  runner: Runner;
  entry: RecipeEntry;
  workDir: string;
  cacheDir?: string | undefined;
  progress?: ProgressSink;
  signal?: AbortSignal;
}): Promise<string> {
  const { runner, entry } = o;
  const cached = o.cacheDir ? join(o.cacheDir, `${recipeKey(entry)}.tar`) : undefined;
  if (cached && existsSync(cached)) {
    o.progress?.({ kind: 'stage', stage: 'debootstrap', message: `reusing ${cached}` });
    return cached;
  }
  if (process.getuid?.() !== 0) {
    // debootstrap mounts /proc and /sys inside its tree and runs package scripts: a daemon running as its
    // owner (system mode) has no root for that, and the helper does no such thing on its behalf.
    throw badRequest(
      `building ${entry.name} with debootstrap needs root, and this daemon runs as its owner`,
      {
        hint: 'pull an OCI image (banger image pull) or import a rootfs tarball (banger image import) instead; recipes build only in the root user mode',
      },
    );
  }
  const tree = join(o.workDir, 'debootstrap');
  await mkdir(tree, { recursive: true });
  o.progress?.({
    kind: 'stage',
    stage: 'debootstrap',
    message: `${entry.suite} from ${entry.mirror} with ${entry.packages.length} extra packages (about a minute)`,
  });
  try {
    await debootstrap(runner, entry, tree, o.signal);
    o.progress?.({ kind: 'stage', stage: 'pack', message: 'packing the tree as a tarball' });
    const out = cached ?? join(o.workDir, 'rootfs.tar');
    if (cached) await mkdir(o.cacheDir as string, { recursive: true });
    const tmp = `${out}.tmp`;
    await runner.run(
      ['tar', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', tree, '-cf', tmp, '.'],
      { signal: o.signal },
    );
    await rename(tmp, out);
    return out;
  } finally {
    await unmountUnder(runner, tree);
    await rm(tree, { recursive: true, force: true });
  }
}

/**
 * The kernel's modules as one more layer (`usr/lib/modules/<version>`: on merged-/usr Debian, /lib is a link
 * to usr/lib, which a layer entry under lib/ would replace): the guest's modprobe finds what docker and
 * netfilter load on demand (bridge, veth, nf_tables, overlay). Owned by root, as the kernel package installs them.
 */
export async function kernelModulesTarball(o: {
  runner: Runner;
  kernel: { dir: string; modulesDir: string | undefined; manifest: { version: string } };
  workDir: string;
  signal?: AbortSignal;
}): Promise<string | undefined> {
  if (!o.kernel.modulesDir) return undefined;
  if (!/^[A-Za-z0-9._+-]+$/.test(o.kernel.manifest.version))
    throw badRequest(`kernel version ${JSON.stringify(o.kernel.manifest.version)} is not a plain name`);
  await mkdir(o.workDir, { recursive: true });
  const out = join(o.workDir, 'kernel-modules.tar');
  await o.runner.run(
    [
      'tar',
      '-C',
      dirname(o.kernel.modulesDir),
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      `--transform=s,^${basename(o.kernel.modulesDir)},usr/lib/modules/${o.kernel.manifest.version},S`,
      '-cf',
      out,
      basename(o.kernel.modulesDir),
    ],
    { signal: o.signal },
  );
  return out;
}
