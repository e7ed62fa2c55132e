import { basename, join } from 'node:path';

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

/** Maps a host path that was staged into the chroot to the path Firecracker sees (files sit at its root). */
export function jailedPath(hostPath: string): string {
  return `/${basename(hostPath)}`;
}
