/**
 * `banger system install --owner USER --dry-run` through the built CLI: it prints every directory, file
 * and command and writes nothing; the units it prints pass `systemd-analyze verify` (which also checks
 * that their ExecStart programs exist), and the helper keeps exactly the capabilities it names, each with
 * its reason. Without --dry-run it is refused (not built yet), as are root and unknown owners.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { HELPER_CAPABILITIES } from '../../src/system/units.js';
import { createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';

const inst = createInstance();
const dir = mkdtempSync(join(tmpdir(), 'bgr-units-'));
afterAll(async () => {
  await inst.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface Plan {
  owner: { name: string; uid: number };
  dirs: { path: string; owner: string; mode: string }[];
  files: { path: string; owner: string; mode: string; content: string }[];
  commands: string[][];
}

async function plan(): Promise<Plan> {
  const r = await inst.cli(['system', 'install', '--owner', 'nobody', '--dry-run', '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Plan;
}

/** Writes the plan's units into `dir` and runs systemd-analyze verify on them. */
async function verify(units: Plan['files']) {
  const paths = units.map((f) => {
    const p = join(dir, basename(f.path));
    writeFileSync(p, f.content);
    return p;
  });
  return execa('systemd-analyze', ['verify', ...paths], { reject: false });
}

describe('banger system install --dry-run', () => {
  it('prints units that systemd-analyze verify accepts, pointing at the installed programs', async () => {
    const p = await plan();
    const units = p.files.filter((f) => f.path.endsWith('.service'));
    expect(units.map((f) => f.path)).toEqual([
      '/etc/systemd/system/bangerd-root.service',
      '/etc/systemd/system/bangerd.service',
    ]);
    const res = await verify(units);
    expect(res.exitCode, res.stderr).toBe(0);
    // The only remark allowed is about the test's owner being the special user nobody.
    const remarks = `${res.stdout}\n${res.stderr}`.split('\n').filter((l) => l.trim() !== '');
    expect(remarks.filter((l) => !l.includes('Special user nobody configured'))).toEqual([]);
    for (const f of units) {
      const exec = /^ExecStart=(\S+) (\S+)/m.exec(f.content)!;
      expect(exec[1]).toBe(process.execPath);
      expect(exec[2]!.startsWith(join(REPO_ROOT, 'bin'))).toBe(true);
      expect(existsSync(exec[2]!)).toBe(true);
    }
    // verify is not blind: a missing program fails it.
    const broken = units.map((f) => ({
      ...f,
      content: f.content.replace(process.execPath, '/nonexistent/node'),
    }));
    expect((await verify(broken)).exitCode).not.toBe(0);
  }, 120_000);

  it('runs the daemon as the owner with no capability, and the helper with exactly its own, each explained', async () => {
    const p = await plan();
    const daemon = p.files.find((f) => f.path.endsWith('/bangerd.service'))!.content;
    const helper = p.files.find((f) => f.path.endsWith('/bangerd-root.service'))!.content;
    expect(daemon).toMatch(/^User=nobody$/m);
    expect(daemon).toMatch(/^CapabilityBoundingSet=$/m);
    expect(helper).not.toMatch(/^User=/m);
    const caps = /^CapabilityBoundingSet=(.*)$/m.exec(helper)![1]!.split(' ');
    expect(caps).toEqual(HELPER_CAPABILITIES.map(([c]) => c));
    expect(caps.sort()).toEqual(
      ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_KILL', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN'].sort(),
    );
    for (const cap of caps) expect(helper).toMatch(new RegExp(`^#   ${cap}: \\S`, 'm'));
    for (const unit of [daemon, helper]) {
      for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes'])
        expect(unit).toMatch(new RegExp(`^${line}$`, 'm'));
    }
    expect(helper).toMatch(/^ProtectHome=(yes|read-only)$/m);
    expect(daemon).toMatch(/^ProtectHome=read-only$/m);
    expect(helper).toContain('--owner nobody --socket /run/banger-root/bangerd-root.sock');
  }, 60_000);

  it('lists the directories with owners and modes, the install record and the commands, and writes nothing', async () => {
    const p = await plan();
    expect(p.owner).toEqual({ name: 'nobody', uid: 65534, gid: 65534 });
    expect(p.dirs).toContainEqual({ path: '/var/lib/banger', owner: 'nobody', group: '65534', mode: '0700' });
    expect(p.dirs).toContainEqual({ path: '/run/banger-root', owner: 'root', group: 'root', mode: '0711' });
    const record = p.files.find((f) => f.path === '/etc/banger/install.toml')!;
    expect(record.content).toMatch(/^owner_uid = 65534$/m);
    expect(p.commands).toEqual([
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'bangerd-root.service'],
      ['systemctl', 'enable', '--now', 'bangerd.service'],
    ]);
    const text = await inst.cli(['system', 'install', '--owner', 'nobody', '--dry-run']);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain('dry run, nothing is written or run');
    expect(text.stdout).toMatch(/^--- \/etc\/systemd\/system\/bangerd-root\.service \(root:root 0644\)$/m);
    expect(text.stdout).toMatch(/^ {2}\/run\/banger-root +root:root +0711$/m);
    expect(text.stdout).toMatch(/^ {2}systemctl enable --now bangerd\.service$/m);
    for (const f of p.files) {
      if (existsSync(f.path))
        expect(readFileSync(f.path, 'utf8')).not.toContain('Written by `banger system install`');
    }
  }, 60_000);

  it('refuses to install without --dry-run (not built yet), for root, and for a user that does not exist', async () => {
    const real = await inst.cli(['system', 'install', '--owner', 'nobody']);
    expect(real.exitCode).toBe(1);
    expect(real.stderr).toContain('system install is not built yet: only --dry-run is');
    const root = await inst.cli(['system', 'install', '--owner', 'root', '--dry-run']);
    expect(root.exitCode).toBe(1);
    expect(root.stderr).toContain('--owner must not be root');
    const ghost = await inst.cli(['system', 'install', '--owner', 'no-such-user-bgr', '--dry-run']);
    expect(ghost.exitCode).not.toBe(0);
    expect(ghost.stderr).toContain('no local user "no-such-user-bgr"');
  }, 60_000);
});
