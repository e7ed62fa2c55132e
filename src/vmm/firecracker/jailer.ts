import { link, lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { badRequest, operationFailed } from '../../model/errors.js';
import type { VmmLaunchSpec } from '../types.js';

/** Where the jailer builds a VM's chroot: <base>/<exec-file name>/<id>/root (jailer's own layout). */
export function jailerChrootRoot(base: string, firecrackerBin: string, id: string): string {
  return join(base, basename(firecrackerBin), id, 'root');
}

/** The API socket's path as Firecracker sees it inside the chroot. */
export const JAILED_API_SOCKET = '/run/firecracker.socket';

export interface JailerOptions {
  jailerBin: string;
  firecrackerBin: string;
  id: string;
  uid: number;
  gid: number;
  chrootBase: string;
  netns?: string;
}

/**
 * The jailer command line. Without --daemonize and --new-pid-ns the jailer execs Firecracker in place,
 * so the pid we spawn is Firecracker's own and the teardown identity stays valid.
 */
export function jailerArgv(o: JailerOptions): string[] {
  return [
    o.jailerBin,
    ...['--id', o.id, '--exec-file', o.firecrackerBin],
    ...['--uid', String(o.uid), '--gid', String(o.gid)],
    ...['--chroot-base-dir', o.chrootBase],
    ...(o.netns ? ['--netns', `/var/run/netns/${o.netns}`] : []),
    '--',
    ...['--api-sock', JAILED_API_SOCKET],
  ];
}

/**
 * Where each input sits inside the chroot, named by role (not by basename, so two disks both called
 * root.ext4 in different directories never collide). Keys are host paths, values what Firecracker sees.
 */
export function jailedNames(
  spec: Pick<VmmLaunchSpec, 'kernelPath' | 'initrdPath' | 'rootDisk' | 'extraDisks'>,
  files: { log: string; metrics: string; vsockSocket: string },
): Map<string, string> {
  const names = new Map<string, string>([[spec.kernelPath, '/kernel']]);
  if (spec.initrdPath) names.set(spec.initrdPath, '/initrd');
  [spec.rootDisk, ...(spec.extraDisks ?? [])].forEach((d, i) => {
    names.set(d.path, `/disk${i}`);
  });
  names.set(files.log, '/firecracker.log');
  names.set(files.metrics, '/metrics.json');
  names.set(files.vsockSocket, '/vsock.sock');
  return names;
}

/**
 * Makes sure the chroot base (config jailer_chroot_base) is a place only root can change before anything is
 * staged in it: root hard-links disks there and runs Firecracker inside, so a base that is a symlink, or
 * that another user owns or may write to, would let that user redirect or swap what root builds. Created
 * (0700, root's) when it does not exist yet; the default lives under the state dir.
 */
export async function checkChrootBase(base: string): Promise<void> {
  const hint =
    'set jailer_chroot_base to a real directory owned by root and writable by root only (chmod 0700)';
  // Recursive mkdir succeeds on an existing directory, and on a symlink to one: lstat judges what is there.
  await mkdir(base, { recursive: true, mode: 0o700 }).catch(() => {});
  const st = await lstat(base).catch((err: unknown) => {
    throw badRequest(`jailer_chroot_base ${base} cannot be used: ${(err as Error).message}`, { hint });
  });
  if (st.isSymbolicLink())
    throw badRequest(`jailer_chroot_base ${base} is a symlink; refusing to build jailer chroots through it`, {
      hint,
    });
  if (!st.isDirectory()) throw badRequest(`jailer_chroot_base ${base} is not a directory`, { hint });
  if (st.uid !== 0)
    throw badRequest(
      `jailer_chroot_base ${base} is owned by uid ${st.uid}, not root; refusing to build jailer chroots in it`,
      { hint },
    );
  if (st.mode & 0o022)
    throw badRequest(
      `jailer_chroot_base ${base} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); refusing to build jailer chroots in it`,
      { hint },
    );
}

/**
 * Fills a fresh chroot with what Firecracker opens: kernel, initrd and disks as hard links (instant, no
 * extra space, hence the chroot base must share a filesystem with them), empty log and metrics files.
 */
export async function stageJail(
  chrootRoot: string,
  spec: Pick<VmmLaunchSpec, 'kernelPath' | 'initrdPath' | 'rootDisk' | 'extraDisks'>,
  files: { log: string; metrics: string },
  map: (hostPath: string) => string,
): Promise<void> {
  // A chroot left by an earlier run of this VM would make the links fail.
  await rm(dirname(chrootRoot), { recursive: true, force: true });
  await mkdir(join(chrootRoot, 'run'), { recursive: true, mode: 0o700 });
  const staged = [
    spec.kernelPath,
    spec.initrdPath,
    ...[spec.rootDisk, ...(spec.extraDisks ?? [])].map((d) => d.path),
  ];
  for (const p of staged) {
    if (!p) continue;
    await link(p, join(chrootRoot, map(p))).catch((err: unknown) => {
      throw operationFailed(`cannot stage ${p} into the jailer chroot ${chrootRoot}`, {
        cause: err,
        hint: 'jailer_chroot_base must be on the same filesystem as the images and VM disks',
      });
    });
  }
  for (const p of [files.log, files.metrics]) await writeFile(join(chrootRoot, map(p)), '');
}
