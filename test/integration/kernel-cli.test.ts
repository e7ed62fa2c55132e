import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';

// Real: the default catalog entry is the host release's Debian cloud kernel, fetched through apt.
describe('banger kernel (CLI -> daemon -> kernel store)', () => {
  let inst: BangerInstance;
  beforeAll(() => {
    inst = createInstance();
  });
  afterAll(async () => inst.cleanup());

  it('lists the catalog, pulls the default kernel with progress, shows its capabilities, removes it', async () => {
    const before = await inst.cli(['kernel', 'list', '--available', '--json']);
    expect(before.exitCode, before.stderr).toBe(0);
    expect(JSON.parse(before.stdout).available).toContainEqual(
      expect.objectContaining({ name: 'debian-cloud-amd64', state: 'available' }),
    );

    const pull = await inst.cli(['kernel', 'pull', 'debian-cloud-amd64']);
    expect(pull.exitCode, pull.stderr).toBe(0);
    expect(pull.stdout).toMatch(/^pulled debian-cloud-amd64: \d+\.\d+\.\d+-\d+-cloud-amd64/);
    expect(pull.stderr).toContain('initramfs');

    const show = await inst.cli(['kernel', 'show', 'debian-cloud-amd64', '--json']);
    const k = JSON.parse(show.stdout);
    expect(k.capabilities).toMatchObject({ virtioBlk: 'module', needsInitramfs: true, ext4: 'builtin' });
    expect(existsSync(k.initrdPath)).toBe(true);
    expect(k.files.vmlinuz.sha256).toMatch(/^[0-9a-f]{64}$/);

    const again = await inst.cli(['kernel', 'pull', 'debian-cloud-amd64']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/already/);

    const rm = await inst.cli(['kernel', 'rm', 'debian-cloud-amd64']);
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect(readdirSync(join(inst.home, 'state', 'kernels'))).toEqual([]);
  });

  it('says what to do for an unknown name, a bad .deb, and missing flags, leaving nothing behind', async () => {
    const unknown = await inst.cli(['kernel', 'pull', 'no-such-kernel']);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain('no-such-kernel');
    expect(unknown.stderr).toContain('debian-cloud-amd64');

    const bogus = join(inst.home, 'bogus.deb');
    writeFileSync(bogus, 'not a deb');
    const bad = await inst.cli(['kernel', 'import', 'mine', '--deb', bogus]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/^banger: .*bogus.deb is not a readable Debian package/m);

    const none = await inst.cli(['kernel', 'import', 'mine']);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('give --from <dir> or --deb <file>');
    expect(readdirSync(join(inst.home, 'state', 'kernels'))).toEqual([]);
  });
});
