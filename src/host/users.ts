import { readFileSync } from 'node:fs';
import { badRequest, notFound } from '../model/errors.js';

export interface LocalUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** /etc/passwd is a few KiB on any host; a bigger one is read only this far. */
const PASSWD_MAX_BYTES = 4 * 1024 * 1024;

/**
 * A local user by name or numeric uid, from /etc/passwd (banger's owners are local accounts; NSS sources
 * such as LDAP are not consulted). Throws not_found with what to do when there is none.
 */
export function lookupUser(nameOrUid: string, passwdPath = '/etc/passwd'): LocalUser {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/.test(nameOrUid)) {
    throw badRequest(`invalid user ${JSON.stringify(nameOrUid)}`, {
      hint: 'give a user name or a numeric uid',
    });
  }
  const text = readFileSync(passwdPath, 'utf8').slice(0, PASSWD_MAX_BYTES);
  const numeric = /^\d+$/.test(nameOrUid);
  for (const line of text.split('\n')) {
    const [name, , uid, gid, , home] = line.split(':');
    if (!name || uid === undefined || gid === undefined) continue;
    if (numeric ? uid === nameOrUid : name === nameOrUid) {
      return { name, uid: Number(uid), gid: Number(gid), home: home ?? '/' };
    }
  }
  throw notFound(`no local user ${JSON.stringify(nameOrUid)} in ${passwdPath}`, {
    hint: 'create the user first (useradd), or give an existing one',
  });
}
