import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../host/index.js';
import { CommandError } from '../host/index.js';
import { badRequest, notFound, operationFailed } from '../model/errors.js';

/** A concrete (versioned) Debian kernel package, as apt resolves it on this host. */
export interface DebianKernelPackage {
  /** e.g. linux-image-6.1.0-56-cloud-amd64 */
  package: string;
  /** The package version, e.g. 6.1.192-2. */
  version: string;
}

const APT_HINT =
  'check the apt sources of this host (`apt-get update`, and a <release>-security line for kernels)';

/**
 * Resolves a kernel package name on this host's apt sources: a metapackage such as linux-image-cloud-amd64
 * resolves to the versioned linux-image-<release> it depends on now (never pinned: the security archive
 * replaces it), a versioned name resolves to itself.
 */
export async function resolveDebianKernelPackage(
  runner: Runner,
  name: string,
  signal?: AbortSignal,
): Promise<DebianKernelPackage> {
  if (!/^[a-z0-9][a-z0-9.+-]+$/.test(name))
    throw badRequest(`invalid Debian package name ${JSON.stringify(name)}`);
  const show = await runner.run(['apt-cache', 'show', '--no-all-versions', name], {
    allowFailure: true,
    signal,
  });
  if (show.exitCode !== 0 || !/^Package:/m.test(show.stdout)) {
    throw notFound(`Debian package ${name} is not known to apt on this host`, { hint: APT_HINT });
  }
  const depends = /^Depends:\s*(.*)$/m.exec(show.stdout)?.[1] ?? '';
  const image = depends
    .split(',')
    .map((d) => d.trim().split(/\s|\|/)[0] ?? '')
    .find((d) => /^linux-image-\d/.test(d));
  if (!image) {
    const version = /^Version:\s*(\S+)/m.exec(show.stdout)?.[1] ?? 'unknown';
    return { package: name, version };
  }
  return resolveDebianKernelPackage(runner, image, signal);
}

/**
 * Downloads a package into `dir` with `apt-get download`, which checks it against the signed archive index
 * (so Debian's signatures are verified), and returns the .deb path.
 */
export async function downloadDebianPackage(
  runner: Runner,
  pkg: DebianKernelPackage,
  dir: string,
  signal?: AbortSignal,
): Promise<string> {
  try {
    await runner.run(['apt-get', 'download', '-q', `${pkg.package}=${pkg.version}`], {
      cwd: dir,
      timeoutMs: 600_000,
      signal,
    });
  } catch (err) {
    throw operationFailed(`apt-get download ${pkg.package} failed`, {
      hint: APT_HINT,
      cause: err instanceof CommandError ? err : undefined,
    });
  }
  const debs = (await readdir(dir)).filter((f) => f.startsWith(`${pkg.package}_`) && f.endsWith('.deb'));
  const deb = debs[0];
  if (!deb) throw operationFailed(`apt-get download ${pkg.package} produced no .deb`, { hint: APT_HINT });
  return join(dir, deb);
}

/** Extracts a .deb's files (not its scripts) into `dir` with `dpkg-deb -x`. */
export async function extractDeb(runner: Runner, debPath: string, dir: string): Promise<void> {
  try {
    await runner.run(['dpkg-deb', '-x', debPath, dir], { timeoutMs: 300_000 });
  } catch (err) {
    throw badRequest(`${debPath} is not a readable Debian package`, {
      hint: 'pass a .deb file such as linux-image-<version>_<arch>.deb',
      cause: err,
    });
  }
}
