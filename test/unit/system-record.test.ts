/**
 * What `system status` and the doctor read about an install: the record (absent, whole, or refused when
 * malformed, with unknown keys, or oversized), and whether systemd is the running init.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readInstallRecord } from '../../src/system/install-record.js';
import { systemdBooted } from '../../src/system/systemd.js';

const dir = mkdtempSync(join(tmpdir(), 'bgr-rec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = [
  'owner_user = "alice"',
  'owner_uid = 1000',
  'owner_gid = 1000',
  'owner_home = "/home/alice"',
  'version = "1.2.3"',
  'node = "/usr/bin/node"',
  'package_root = "/opt/banger"',
  'helper_socket = "/run/banger-root/bangerd-root.sock"',
  'installed_at = "2026-01-01T00:00:00.000Z"',
].join('\n');

function configDir(name: string, content?: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  if (content !== undefined) writeFileSync(join(d, 'install.toml'), content);
  return d;
}

describe('install record', () => {
  it('is undefined when absent and parsed when whole', () => {
    expect(readInstallRecord(configDir('none'))).toBeUndefined();
    expect(readInstallRecord(configDir('good', good))).toMatchObject({
      owner_user: 'alice',
      owner_uid: 1000,
    });
  });

  it('refuses a malformed record, an unknown key, a wrong type and an oversized file', () => {
    const cases: [string, string][] = [
      ['broken', 'owner_user = '],
      ['unknown', `${good}\nextra = 1`],
      ['type', good.replace('owner_uid = 1000', 'owner_uid = "1000"')],
      ['huge', `${good}\n#${'x'.repeat(70 * 1024)}`],
    ];
    for (const [name, content] of cases) {
      expect(() => readInstallRecord(configDir(name, content)), name).toThrow(
        /is not a banger install record|larger than/,
      );
    }
  });
});

describe('systemdBooted', () => {
  it('is true only when the systemd run dir is a directory', () => {
    expect(systemdBooted(join(dir, 'no-such'))).toBe(false);
    writeFileSync(join(dir, 'a-file'), '');
    expect(systemdBooted(join(dir, 'a-file'))).toBe(false);
    mkdirSync(join(dir, 'systemd-system'));
    expect(systemdBooted(join(dir, 'systemd-system'))).toBe(true);
  });
});
