/**
 * The doctor's `owner access` row: whether the daemon's owner (from the install record) can open /dev/kvm
 * by its mode and groups, with the usermod hint when it cannot, and TCG named when there is no device.
 * Device nodes are stood in for by files with the same owner, group and mode bits.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ownerAccessCheck } from '../../src/cli/doctor/owner-access.js';
import { resolveLayout } from '../../src/config/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'bgr-oa-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** A stand-in /dev/net/tun open to everyone (Debian's default), for the cases about other devices. */
const openTun = join(dir, 'tun-open');
writeFileSync(openTun, '');
chmodSync(openTun, 0o666);

const layoutAt = (home: string) =>
  resolveLayout({ env: { BANGER_HOME: home }, uid: 0, home: '/root', mode: 'user' });
const ctx = (home: string) => ({ layout: layoutAt(home), runner: undefined as never, arch: 'x64' });

function instanceWithRecord(name: string): string {
  const home = join(dir, name);
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'install.toml'),
    [
      'owner_user = "nobody"',
      'owner_uid = 65534',
      'owner_gid = 65534',
      'owner_home = "/nonexistent"',
      'version = "0.0.0"',
      'node = "/usr/bin/node"',
      'package_root = "/opt/banger"',
      'helper_socket = "/run/banger-root/bangerd-root.sock"',
      'installed_at = "2026-01-01T00:00:00.000Z"',
      '',
    ].join('\n'),
  );
  return home;
}

describe('doctor owner access', () => {
  it('in root user mode has nothing to check', async () => {
    const home = join(dir, 'plain');
    mkdirSync(home);
    const row = await ownerAccessCheck(join(dir, 'no-kvm'))(ctx(home));
    expect(row).toEqual({
      name: 'owner access',
      status: 'PASS',
      details: ['root user mode: the daemon opens /dev/kvm and its taps as root'],
    });
  });

  it('names TCG when there is no /dev/kvm, and says no helper makes taps without priv_helper_socket', async () => {
    const row = await ownerAccessCheck(
      join(dir, 'no-kvm'),
      '/etc/group',
      openTun,
    )(ctx(instanceWithRecord('absent')));
    expect(row.status).toBe('WARN');
    expect(row.details).toEqual([
      `${join(dir, 'no-kvm')}: absent, guests run under TCG, slower`,
      `${openTun}: nobody (uid 65534) can open it`,
      'taps: no priv_helper_socket, so no helper makes taps for nobody',
    ]);
  });

  it('gives the usermod hint when the owner is not in the device group, and passes once it is', async () => {
    const kvm = join(dir, 'kvm');
    writeFileSync(kvm, '');
    chownSync(kvm, 0, 4242);
    chmodSync(kvm, 0o660);
    const groups = join(dir, 'group');
    writeFileSync(groups, 'root:x:0:\nkvm:x:4242:alice\n');
    const home = instanceWithRecord('denied');
    const denied = await ownerAccessCheck(kvm, groups, openTun)(ctx(home));
    expect(denied.status).toBe('WARN');
    expect(denied.details[0]).toBe(
      `${kvm}: nobody (uid 65534) cannot open it (group kvm, mode 660); guests fall back to TCG`,
    );
    expect(denied.hint).toBe('sudo usermod -aG kvm nobody, then restart bangerd (banger system restart)');

    writeFileSync(groups, 'root:x:0:\nkvm:x:4242:alice,nobody\n');
    const ok = await ownerAccessCheck(kvm, groups, openTun)(ctx(home));
    expect(ok.details[0]).toBe(`${kvm}: nobody (uid 65534) can open it`);
    // World read-write (as some distributions ship /dev/kvm) is enough without the group.
    writeFileSync(groups, 'root:x:0:\nkvm:x:4242:\n');
    chmodSync(kvm, 0o666);
    expect((await ownerAccessCheck(kvm, groups, openTun)(ctx(home))).details[0]).toBe(
      `${kvm}: nobody (uid 65534) can open it`,
    );
  });

  it('fails with the chmod hint when the owner cannot open the tun device, and when there is none', async () => {
    const tun = join(dir, 'tun');
    writeFileSync(tun, '');
    chmodSync(tun, 0o600); // root's, as this build host ships it
    const home = instanceWithRecord('tun-closed');
    const denied = await ownerAccessCheck(join(dir, 'no-kvm'), '/etc/group', tun)(ctx(home));
    expect(denied.status).toBe('FAIL');
    expect(denied.details[1]).toBe(
      `${tun}: nobody (uid 65534) cannot open it (mode 600), so the owner's VMs cannot attach their taps`,
    );
    expect(denied.hint).toBe(
      `sudo chmod 0666 ${tun} (Debian's default; a udev rule KERNEL=="tun", MODE="0666" keeps it)`,
    );
    const absent = await ownerAccessCheck(join(dir, 'no-kvm'), '/etc/group', join(dir, 'no-tun'))(ctx(home));
    expect(absent.status).toBe('FAIL');
    expect(absent.details[1]).toBe(`${join(dir, 'no-tun')}: absent, so no VM can attach its tap`);
    expect(absent.hint).toBe('sudo modprobe tun');
  });
});
