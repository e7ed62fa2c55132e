import { describe, expect, it } from 'vitest';
import {
  agentBinaryPath,
  FIRST_BOOT_MARKER_PATH,
  FIRST_BOOT_SCRIPT_PATH,
  firstBootScriptHostPath,
  GUEST_AGENT_PATH,
  GUEST_INIT_SHIM_PATH,
  guestAssets,
} from '../../../src/guest/index.js';
import type { GuestAsset } from '../../../src/model/index.js';

const byPath = (assets: GuestAsset[]) => new Map(assets.map((a) => [a.path, a]));

describe('guestAssets', () => {
  it('ships the agent binary from the package build and the init shim as a symlink to it', () => {
    const assets = byPath(guestAssets());
    expect(assets.get(GUEST_AGENT_PATH)).toEqual({
      kind: 'file',
      path: GUEST_AGENT_PATH,
      content: { hostPath: agentBinaryPath() },
      mode: 0o755,
    });
    expect(agentBinaryPath()).toMatch(/agent\/build\/banger-agent$/);
    expect(assets.get(GUEST_INIT_SHIM_PATH)).toEqual({
      kind: 'symlink',
      path: GUEST_INIT_SHIM_PATH,
      target: GUEST_AGENT_PATH,
    });
  });

  it('enables the systemd unit through multi-user.target.wants and the OpenRC service in the default runlevel', () => {
    const assets = byPath(guestAssets({ init: 'auto' }));
    const unit = assets.get('/etc/systemd/system/banger-agent.service');
    expect(unit?.kind === 'file' && String(unit.content)).toContain(`ExecStart=${GUEST_AGENT_PATH}`);
    expect(assets.get('/etc/systemd/system/multi-user.target.wants/banger-agent.service')).toMatchObject({
      kind: 'symlink',
      target: '/etc/systemd/system/banger-agent.service',
    });
    const rc = assets.get('/etc/init.d/banger-agent');
    expect(rc?.kind === 'file' && String(rc.content)).toMatch(/^#!\/sbin\/openrc-run/);
    expect(assets.get('/etc/runlevels/default/banger-agent')).toMatchObject({ kind: 'symlink' });
  });

  it('lists every parent directory before its children, with absolute paths only', () => {
    const assets = guestAssets();
    const dirs = new Set(['/']);
    for (const a of assets) {
      expect(a.path.startsWith('/')).toBe(true);
      const parent = a.path.slice(0, a.path.lastIndexOf('/')) || '/';
      if (!['/', '/usr', '/sbin', '/etc'].includes(parent))
        expect(dirs.has(parent), `${parent} before ${a.path}`).toBe(true);
      if (a.kind === 'dir') dirs.add(a.path);
    }
  });

  it('sets up ssh on first boot, keys only, and masks device waits', () => {
    const assets = byPath(guestAssets());
    const dropIn = assets.get('/etc/ssh/sshd_config.d/banger.conf');
    expect(dropIn?.kind === 'file' && String(dropIn.content)).toContain('PermitRootLogin prohibit-password');
    expect(dropIn?.kind === 'file' && String(dropIn.content)).toContain('PasswordAuthentication no');
    expect(assets.get(FIRST_BOOT_MARKER_PATH)).toMatchObject({ kind: 'file', content: '' });
    expect(assets.get(FIRST_BOOT_SCRIPT_PATH)).toMatchObject({
      content: { hostPath: firstBootScriptHostPath() },
    });
    const unit = assets.get('/etc/systemd/system/banger-first-boot.service');
    expect(unit?.kind === 'file' && String(unit.content)).toContain(
      `ConditionPathExists=${FIRST_BOOT_MARKER_PATH}`,
    );
    for (const dev of ['dev-ttyS0.device', 'dev-vdb.device'])
      expect(assets.get(`/etc/systemd/system/${dev}`)).toMatchObject({
        kind: 'symlink',
        target: '/dev/null',
      });
  });

  it("'shim' leaves out the service hooks", () => {
    const paths = guestAssets({ init: 'shim' }).map((a) => a.path);
    expect(paths).toContain(GUEST_INIT_SHIM_PATH);
    expect(paths.some((p) => p.startsWith('/etc/'))).toBe(false);
  });
});
