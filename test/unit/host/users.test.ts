import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lookupUser } from '../../../src/host/users.js';

const dir = mkdtempSync(join(tmpdir(), 'banger-users-'));
const passwd = join(dir, 'passwd');
writeFileSync(
  passwd,
  'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1001:Alice:/home/alice:/bin/sh\n\nbroken\n',
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lookupUser', () => {
  it('finds a user by name or uid', () => {
    const alice = { name: 'alice', uid: 1000, gid: 1001, home: '/home/alice' };
    expect(lookupUser('alice', passwd)).toEqual(alice);
    expect(lookupUser('1000', passwd)).toEqual(alice);
  });

  it('says what to do when there is no such user, and refuses a name that is not one', () => {
    expect(() => lookupUser('bob', passwd)).toThrow(/no local user "bob"/);
    expect(() => lookupUser('x:0:0', passwd)).toThrow(/invalid user/);
    expect(() => lookupUser('', passwd)).toThrow(/invalid user/);
  });
});
