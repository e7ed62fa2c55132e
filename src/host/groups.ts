import { readFileSync, statSync } from 'node:fs';
import type { LocalUser } from './users.js';

/** /etc/group is a few KiB on any host; a bigger one is read only this far. */
const GROUP_MAX_BYTES = 4 * 1024 * 1024;

/** The user's groups as the kernel will give them at login: the primary gid and every group listing it. */
export function userGroupIds(user: LocalUser, groupPath = '/etc/group'): number[] {
  const gids = new Set([user.gid]);
  for (const [, gid, members] of groupEntries(groupPath)) {
    if (members.includes(user.name)) gids.add(gid);
  }
  return [...gids];
}

/** The name of a gid, or the number itself when /etc/group does not name it. */
export function groupName(gid: number, groupPath = '/etc/group'): string {
  return groupEntries(groupPath).find(([, g]) => g === gid)?.[0] ?? String(gid);
}

function groupEntries(groupPath: string): [string, number, string[]][] {
  let text: string;
  try {
    text = readFileSync(groupPath, 'utf8').slice(0, GROUP_MAX_BYTES);
  } catch {
    return [];
  }
  const out: [string, number, string[]][] = [];
  for (const line of text.split('\n')) {
    const [name, , gid, members] = line.split(':');
    if (!name || gid === undefined || !/^\d+$/.test(gid)) continue;
    out.push([name, Number(gid), (members ?? '').split(',').filter(Boolean)]);
  }
  return out;
}

/** What `user` may do with a device node by its mode bits (as the kernel checks them, ACLs aside). */
export type DeviceAccess =
  | { state: 'absent' }
  | { state: 'ok' }
  | { state: 'denied'; group: string; mode: string };

export function deviceAccess(user: LocalUser, path: string, groupPath = '/etc/group'): DeviceAccess {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return { state: 'absent' };
  }
  const rw = (shift: number) => ((st.mode >> shift) & 0o6) === 0o6;
  const ok =
    user.uid === 0 ||
    (st.uid === user.uid ? rw(6) : userGroupIds(user, groupPath).includes(st.gid) ? rw(3) : rw(0));
  return ok
    ? { state: 'ok' }
    : { state: 'denied', group: groupName(st.gid, groupPath), mode: (st.mode & 0o777).toString(8) };
}
