/**
 * The two systemd units of a system install: `bangerd` as the owner, `bangerd-root` as root with only the
 * capabilities its operations need. Pure text, so `system install --dry-run` prints exactly what an
 * install would write and a test can hand it to `systemd-analyze verify`.
 */
export interface UnitInputs {
  owner: string;
  /** The node binary both units run (absolute). */
  node: string;
  /** banger's package root: its bin/ holds bangerd and bangerd-root. */
  packageRoot: string;
  helperSocket: string;
  stateDir: string;
  /**
   * The helper's ProtectHome: `yes` hides every home directory, `read-only` where banger itself (node or
   * the package) is installed under one and must stay visible.
   */
  helperProtectHome: 'yes' | 'read-only';
}

/** Every capability bangerd-root keeps, each with the operation that needs it. Nothing else is kept. */
export const HELPER_CAPABILITIES: readonly (readonly [string, string])[] = [
  ['CAP_NET_ADMIN', 'create, address and delete bridges and taps; NAT rules; net.ipv4.ip_forward'],
  ['CAP_NET_RAW', 'iptables (the NAT fallback where nft is missing) opens a raw socket'],
  ['CAP_SYS_ADMIN', 'loop devices (losetup), device-mapper snapshots (dmsetup), entering a netns (setns)'],
  ['CAP_KILL', "signal the owner's VMM processes, each proven by pid, start time, uid, exe and argv"],
  ['CAP_DAC_OVERRIDE', "open image files in the owner's 0700 state dir to back loop devices"],
  ['CAP_CHOWN', 'hand the helper socket to the owner uid (0600), so only the owner can connect'],
];

const header = (what: string) =>
  `# Written by \`banger system install\`: ${what}\n# See docs/privileges.md for the split and what each setting is for.\n`;

export function helperUnit(u: UnitInputs): string {
  const caps = HELPER_CAPABILITIES.map(([cap, why]) => `#   ${cap}: ${why}`).join('\n');
  return `${header("banger's root helper (privileged host operations for one owner)")}
[Unit]
Description=banger root helper (bridge, taps, NAT, loop, device-mapper for ${u.owner})
Before=bangerd.service

[Service]
Type=simple
ExecStart=${u.node} ${u.packageRoot}/bin/bangerd-root --owner ${u.owner} --socket ${u.helperSocket} --state-dir ${u.stateDir}
# /run/banger-root: root-owned 0711, so the owner reaches the socket but cannot list or replace it.
RuntimeDirectory=banger-root
RuntimeDirectoryMode=0711
RuntimeDirectoryPreserve=yes
# /var/lib/banger-root: the helper's instance id (the mark on the links it makes).
StateDirectory=banger-root
StateDirectoryMode=0700
# Capabilities, exactly what the operations need:
${caps}
CapabilityBoundingSet=${HELPER_CAPABILITIES.map(([c]) => c).join(' ')}
# The helper runs only root-owned tools (ip, nft, losetup, dmsetup) and gains nothing through setuid.
NoNewPrivileges=yes
# The OS read-only; writable: /run (netns mounts, xtables lock, its socket) and the owner's state dir
# (backing files of loop devices are opened read-write for copy-on-write).
ProtectSystem=strict
ReadWritePaths=/run ${u.stateDir}
# No home directory holds anything the helper needs (read-only when banger is installed under one).
ProtectHome=${u.helperProtectHome}
PrivateTmp=yes
RestrictSUIDSGID=yes
LockPersonality=yes
# VMMs belong to the daemon's unit; a helper restart must not touch them.
KillMode=process
Restart=on-failure

[Install]
WantedBy=multi-user.target
`;
}

export function daemonUnit(u: UnitInputs): string {
  return `${header("banger's daemon, as its owner")}
[Unit]
Description=banger daemon (VMs, images, store) for ${u.owner}
Requires=bangerd-root.service
After=bangerd-root.service network-online.target

[Service]
Type=simple
User=${u.owner}
ExecStart=${u.node} ${u.packageRoot}/bin/bangerd --system
# /var/lib/banger, /var/cache/banger and /run/banger, owned by ${u.owner} (0700).
StateDirectory=banger
StateDirectoryMode=0700
CacheDirectory=banger
CacheDirectoryMode=0700
RuntimeDirectory=banger
RuntimeDirectoryMode=0700
# Keeps /run/banger across a daemon stop, or reconcile would lose running VMs' sockets.
RuntimeDirectoryPreserve=yes
ConfigurationDirectory=banger
# No ambient privilege at all: everything privileged goes through bangerd-root.
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
# The daemon reads the owner's ~/.docker/config.json and git identity, and writes nothing there.
ProtectHome=read-only
PrivateTmp=yes
RestrictSUIDSGID=yes
LockPersonality=yes
# VMMs are this unit's processes: they outlive a daemon restart (reconcile adopts them).
KillMode=process
Restart=on-failure

[Install]
WantedBy=multi-user.target
`;
}
