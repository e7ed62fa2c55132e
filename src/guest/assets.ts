import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuestAsset } from '../model/index.js';

/** Where the agent lives in every image, and the init shim's name (a symlink to it). */
export const GUEST_AGENT_PATH = '/usr/local/bin/banger-agent';
export const GUEST_INIT_SHIM_PATH = '/sbin/banger-init';

function packageRoot(): string {
  // src/guest/assets.ts and dist/guest/assets.js are both two levels below the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The static agent binary built by `make -C agent` (part of `npm run build`). */
export function agentBinaryPath(): string {
  return join(packageRoot(), 'agent', 'build', 'banger-agent');
}

// Restart only on failure: a second agent (the init shim already started one) exits 0 and stays down.
const SYSTEMD_UNIT = `[Unit]
Description=banger guest agent
DefaultDependencies=no
After=local-fs.target

[Service]
ExecStart=${GUEST_AGENT_PATH}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`;

const OPENRC_SERVICE = `#!/sbin/openrc-run
description="banger guest agent"
command="${GUEST_AGENT_PATH}"
command_background=true
pidfile="/run/banger-agent.pid"

depend() {
  after localmount
}
`;

/** The first-boot script (ssh server where missing) and the marker that makes it run once. */
export const FIRST_BOOT_SCRIPT_PATH = '/usr/local/lib/banger/first-boot.sh';
export const FIRST_BOOT_MARKER_PATH = '/var/lib/banger/first-boot-pending';

/** The first-boot script on the host (shipped as source, like the initramfs init). */
export function firstBootScriptHostPath(): string {
  return join(packageRoot(), 'src', 'guest', 'assets', 'first-boot.sh');
}

const FIRST_BOOT_UNIT = `[Unit]
Description=banger first boot (ssh server)
ConditionPathExists=${FIRST_BOOT_MARKER_PATH}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/sh ${FIRST_BOOT_SCRIPT_PATH}

[Install]
WantedBy=multi-user.target
`;

// As the original: keys only, root by key, through root's authorized_keys.
const SSHD_DROP_IN = `PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
`;

export interface GuestAssetOptions {
  /**
   * 'auto' (default): service hooks for systemd and OpenRC, the first-boot ssh set-up, the sshd drop-in and
   * the init shim, so any image works whether
   * banger boots it with its own init or with `init=/sbin/banger-init`. 'shim': only the binary and the shim
   * (the VM is always booted with `init=/sbin/banger-init`).
   */
  init?: 'auto' | 'shim';
}

/** Everything an image needs for banger's guest side. The rootfs builder writes these without mounting. */
export function guestAssets(opts: GuestAssetOptions = {}): GuestAsset[] {
  const assets: GuestAsset[] = [
    { kind: 'dir', path: '/usr/local', mode: 0o755 },
    { kind: 'dir', path: '/usr/local/bin', mode: 0o755 },
    { kind: 'file', path: GUEST_AGENT_PATH, content: { hostPath: agentBinaryPath() }, mode: 0o755 },
    { kind: 'symlink', path: GUEST_INIT_SHIM_PATH, target: GUEST_AGENT_PATH },
  ];
  if ((opts.init ?? 'auto') === 'shim') return assets;
  assets.push(
    // Parents too: busybox-style images may lack any of them.
    { kind: 'dir', path: '/etc/systemd', mode: 0o755 },
    { kind: 'dir', path: '/etc/systemd/system', mode: 0o755 },
    { kind: 'dir', path: '/etc/systemd/system/multi-user.target.wants', mode: 0o755 },
    { kind: 'file', path: '/etc/systemd/system/banger-agent.service', content: SYSTEMD_UNIT, mode: 0o644 },
    {
      kind: 'symlink',
      path: '/etc/systemd/system/multi-user.target.wants/banger-agent.service',
      target: '/etc/systemd/system/banger-agent.service',
    },
    // Load vsock transports early where the kernel has them as modules (harmless where built in or absent).
    { kind: 'dir', path: '/etc/modules-load.d', mode: 0o755 },
    {
      kind: 'file',
      path: '/etc/modules-load.d/banger.conf',
      content: 'vmw_vsock_virtio_transport\nvirtio_console\n',
      mode: 0o644,
    },
    // Device units systemd would wait 90 s for on a VM that has no such device.
    { kind: 'symlink', path: '/etc/systemd/system/dev-ttyS0.device', target: '/dev/null' },
    { kind: 'symlink', path: '/etc/systemd/system/dev-vdb.device', target: '/dev/null' },
    { kind: 'dir', path: '/usr/local/lib', mode: 0o755 },
    { kind: 'dir', path: '/usr/local/lib/banger', mode: 0o755 },
    {
      kind: 'file',
      path: FIRST_BOOT_SCRIPT_PATH,
      content: { hostPath: firstBootScriptHostPath() },
      mode: 0o755,
    },
    { kind: 'dir', path: '/var', mode: 0o755 },
    { kind: 'dir', path: '/var/lib', mode: 0o755 },
    { kind: 'dir', path: '/var/lib/banger', mode: 0o755 },
    { kind: 'file', path: FIRST_BOOT_MARKER_PATH, content: '', mode: 0o644 },
    {
      kind: 'file',
      path: '/etc/systemd/system/banger-first-boot.service',
      content: FIRST_BOOT_UNIT,
      mode: 0o644,
    },
    {
      kind: 'symlink',
      path: '/etc/systemd/system/multi-user.target.wants/banger-first-boot.service',
      target: '/etc/systemd/system/banger-first-boot.service',
    },
    { kind: 'dir', path: '/etc/ssh', mode: 0o755 },
    { kind: 'dir', path: '/etc/ssh/sshd_config.d', mode: 0o755 },
    { kind: 'file', path: '/etc/ssh/sshd_config.d/banger.conf', content: SSHD_DROP_IN, mode: 0o644 },
    { kind: 'dir', path: '/etc/local.d', mode: 0o755 },
    {
      kind: 'file',
      path: '/etc/local.d/banger-first-boot.start',
      content: `#!/bin/sh\n[ -e ${FIRST_BOOT_MARKER_PATH} ] && /bin/sh ${FIRST_BOOT_SCRIPT_PATH} &\n`,
      mode: 0o755,
    },
    { kind: 'dir', path: '/etc/init.d', mode: 0o755 },
    { kind: 'file', path: '/etc/init.d/banger-agent', content: OPENRC_SERVICE, mode: 0o755 },
    { kind: 'dir', path: '/etc/runlevels', mode: 0o755 },
    { kind: 'dir', path: '/etc/runlevels/default', mode: 0o755 },
    { kind: 'symlink', path: '/etc/runlevels/default/banger-agent', target: '/etc/init.d/banger-agent' },
  );
  return assets;
}
