/**
 * `banger system install --owner USER --dry-run` through the built CLI: it prints every directory, file
 * and command and writes nothing; the units it prints pass `systemd-analyze verify` (which also checks
 * that their ExecStart programs exist), and the helper keeps exactly the capabilities it names, each with
 * its reason. A real install refuses on a host whose PID 1 is not systemd; `--root DIR` writes the same
 * plan below DIR (owners, modes, atomic, rolled back on failure) and `uninstall --root` removes it.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { systemdBooted } from '../../src/system/systemd.js';
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
  dirs: { path: string; owner: string; group: string; mode: string }[];
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

  it('refuses root and a user that does not exist as the owner', async () => {
    const root = await inst.cli(['system', 'install', '--owner', 'root', '--dry-run']);
    expect(root.exitCode).toBe(1);
    expect(root.stderr).toContain('--owner must not be root');
    const ghost = await inst.cli(['system', 'install', '--owner', 'no-such-user-bgr', '--dry-run']);
    expect(ghost.exitCode).not.toBe(0);
    expect(ghost.stderr).toContain('no local user "no-such-user-bgr"');
  }, 60_000);
});

const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
const BANGER = join(REPO_ROOT, 'bin', 'banger');

/** The install's files as `ls -l` would show them: owner uid, group gid, mode. */
function meta(path: string) {
  const st = statSync(path);
  return { uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8).padStart(4, '0') };
}

/** Every path below `root` (what is left in a tree), sorted. */
function tree(root: string): string[] {
  return readdirSync(root, { recursive: true })
    .map((p) => String(p))
    .sort();
}

describe('banger system install (real)', () => {
  it('refuses on a host whose PID 1 is not systemd, naming system run, and writes nothing', async () => {
    // Never installs for real: where systemd is PID 1 the same call is made as a non-root user instead.
    const booted = systemdBooted();
    const argv = [process.execPath, BANGER, 'system', 'install', '--owner', 'nobody'];
    const r = booted
      ? await execa(asNobody[0]!, [...asNobody.slice(1), ...argv], { reject: false, env: inst.env })
      : await inst.cli(['system', 'install', '--owner', 'nobody']);
    expect(r.exitCode).toBe(1);
    if (booted) expect(r.stderr).toContain('banger system install must run as root');
    else {
      expect(r.stderr).toContain("needs systemd as the running init, and this host's PID 1 is not systemd");
      expect(r.stderr).toContain('sudo banger system run --owner USER');
    }
    for (const path of ['/etc/systemd/system/bangerd.service', '/etc/banger/install.toml']) {
      if (existsSync(path))
        expect(readFileSync(path, 'utf8')).not.toContain('Written by `banger system install`');
    }
  }, 60_000);

  it('--root writes exactly the dry-run plan with owners and modes, runs no systemctl, and the units verify', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bgr-root-'));
    try {
      const r = await inst.cli(['system', 'install', '--owner', 'nobody', '--root', root, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const done = JSON.parse(r.stdout) as {
        files: { path: string; action: string }[];
        commands: string[][];
      };
      expect(done.commands).toEqual([]);
      const p = await plan();
      for (const d of p.dirs) {
        const want = d.owner === 'root' ? 0 : 65534;
        expect(meta(join(root, d.path)), d.path).toEqual({
          uid: want,
          gid: d.group === 'root' ? 0 : Number(d.group),
          mode: d.mode,
        });
      }
      for (const f of p.files) {
        const path = join(root, f.path);
        expect(meta(path), f.path).toEqual({ uid: 0, gid: 0, mode: f.mode });
        const written = readFileSync(path, 'utf8');
        // The record's timestamp is the only line that differs between two plans.
        expect(written.replace(/^installed_at = .*$/m, '')).toBe(
          f.content.replace(/^installed_at = .*$/m, ''),
        );
      }
      expect(done.files.map((f) => f.action)).toEqual(['written', 'written', 'written', 'written']);
      // No temporary file is left beside what was written.
      expect(tree(root).filter((n) => n.includes('banger-tmp'))).toEqual([]);
      const units = p.files.filter((f) => f.path.endsWith('.service')).map((f) => join(root, f.path));
      const v = await execa('systemd-analyze', ['verify', ...units], { reject: false });
      expect(v.exitCode, v.stderr).toBe(0);

      // Again: the units and record are replaced, the admin's config is kept as edited.
      const config = join(root, 'etc/banger/config.toml');
      writeFileSync(config, 'priv_helper_socket = "/run/banger-root/bangerd-root.sock"\n# edited\n');
      const again = await inst.cli(['system', 'install', '--owner', 'nobody', '--root', root, '--json']);
      expect(again.exitCode, again.stderr).toBe(0);
      expect((JSON.parse(again.stdout) as typeof done).files.map((f) => f.action)).toEqual([
        'replaced',
        'replaced',
        'replaced',
        'kept',
      ]);
      expect(readFileSync(config, 'utf8')).toContain('# edited');
      const text = await inst.cli(['system', 'install', '--owner', 'nobody', '--root', root]);
      expect(text.stdout).toContain('no systemctl command was run (--root)');

      // A failure after the units were replaced (the record's directory made immutable): the units are
      // put back as they were, and no temporary file is left.
      const unit = join(root, 'etc/systemd/system/bangerd.service');
      writeFileSync(unit, `${readFileSync(unit, 'utf8')}# local edit\n`);
      await execa('chattr', ['+i', join(root, 'etc/banger')]);
      try {
        const failed = await inst.cli(['system', 'install', '--owner', 'nobody', '--root', root]);
        expect(failed.exitCode).toBe(1);
        expect(failed.stderr).toContain('system install failed and was rolled back');
      } finally {
        await execa('chattr', ['-i', join(root, 'etc/banger')]);
      }
      expect(readFileSync(unit, 'utf8')).toMatch(/# local edit\n$/);
      expect(meta(unit)).toEqual({ uid: 0, gid: 0, mode: '0644' });
      expect(tree(root).filter((n) => n.includes('banger-tmp'))).toEqual([]);

      // uninstall --root: units and record go, state stays; --purge needs --yes without a terminal.
      const un = await inst.cli(['system', 'uninstall', '--root', root]);
      expect(un.exitCode, un.stderr).toBe(0);
      expect(existsSync(join(root, 'etc/systemd/system/bangerd.service'))).toBe(false);
      expect(existsSync(join(root, 'etc/banger/install.toml'))).toBe(false);
      expect(existsSync(join(root, 'var/lib/banger'))).toBe(true);
      const noYes = await inst.cli(['system', 'uninstall', '--root', root, '--purge']);
      expect(noYes.exitCode).toBe(1);
      expect(noYes.stderr).toContain(`${root}/var/lib/banger`);
      expect(noYes.stderr).toContain('stdin is not a terminal');
      expect(existsSync(join(root, 'var/lib/banger'))).toBe(true);
      const purge = await inst.cli(['system', 'uninstall', '--root', root, '--purge', '--yes']);
      expect(purge.exitCode, purge.stderr).toBe(0);
      for (const d of p.dirs) expect(existsSync(join(root, d.path)), d.path).toBe(false);
      // A second uninstall finds nothing to do and still succeeds.
      expect((await inst.cli(['system', 'uninstall', '--root', root])).exitCode).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 180_000);

  it('refuses a directory owned by someone else before writing, and rolls back a failure half-way', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bgr-root-'));
    try {
      mkdirSync(join(root, 'var/lib/banger'), { recursive: true });
      const taken = await inst.cli(['system', 'install', '--owner', 'nobody', '--root', root]);
      expect(taken.exitCode).toBe(1);
      expect(taken.stderr).toContain(`${root}/var/lib/banger is owned by uid 0, not nobody (uid 65534)`);
      expect(taken.stderr).toContain(`chown -R nobody ${root}/var/lib/banger`);
      expect(tree(root)).toEqual(['var', 'var/lib', 'var/lib/banger']);
      rmSync(join(root, 'var'), { recursive: true });

      // /etc/systemd is a file: the directories are made, then writing the units fails; all is undone.
      mkdirSync(join(root, 'etc'));
      writeFileSync(join(root, 'etc/systemd'), 'not a directory');
      const half = await inst.cli(['system', 'install', '--owner', 'nobody', '--root', root]);
      expect(half.exitCode).toBe(1);
      expect(half.stderr).toContain('system install failed and was rolled back');
      expect(tree(root)).toEqual(['etc', 'etc/systemd']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('banger system status, restart, uninstall without systemd', () => {
  it('status reports what it can and exits 3 when nothing runs', async () => {
    const r = await inst.cli(['system', 'status', '--json']);
    expect(r.exitCode, r.stderr).toBe(3);
    const st = JSON.parse(r.stdout) as {
      systemd: boolean;
      healthy: boolean;
      record?: unknown;
      helper: { error?: string };
      daemon: { error?: string };
    };
    expect(st.systemd).toBe(systemdBooted());
    expect(st.healthy).toBe(false);
    expect(st.record).toBeUndefined();
    expect(st.helper.error).toBeTruthy();
    expect(st.daemon.error).toBeTruthy();
    const text = await inst.cli(['system', 'status']);
    expect(text.exitCode).toBe(3);
    expect(text.stdout).toMatch(/^install: +no install record \(not installed\)$/m);
    expect(text.stdout).toMatch(/^healthy: +no$/m);
  }, 60_000);

  it('restart and uninstall refuse without systemd, naming system run', async () => {
    if (systemdBooted()) {
      // Never restarts or uninstalls for real: as a non-root user both are refused before anything.
      for (const verb of ['restart', 'uninstall']) {
        const r = await execa(
          asNobody[0]!,
          [...asNobody.slice(1), process.execPath, BANGER, 'system', verb],
          {
            reject: false,
            env: inst.env,
          },
        );
        expect(r.exitCode).toBe(1);
        expect(r.stderr).toContain(`banger system ${verb} must run as root`);
      }
      return;
    }
    for (const verb of ['restart', 'uninstall']) {
      const r = await inst.cli(['system', verb]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`banger system ${verb} needs systemd as the running init`);
      expect(r.stderr).toContain('banger system run --owner USER');
    }
  }, 60_000);
});
