import { loadConfig } from '../../config/index.js';
import { deviceAccess } from '../../host/groups.js';
import { helloPrivHelper } from '../../host/priv/remote.js';
import { type LocalUser, lookupUser } from '../../host/users.js';
import { readInstallRecord } from '../../system/install-record.js';
import type { Check, CheckResult } from './checks.js';

const NAME = 'owner access';
/** Where the VMMs get hardware acceleration; a parameter of the check for tests only. */
export const KVM_DEVICE = '/dev/kvm';
/** Where a VMM attaches its tap (TUNSETIFF); a parameter of the check for tests only. */
export const TUN_DEVICE = '/dev/net/tun';

/**
 * What the daemon's owner can open, in the split: /dev/kvm (its VMMs run as the owner), /dev/net/tun (its
 * VMMs attach their taps through it) and its taps (bangerd-root makes them owned by the uid it serves). The owner is the install record's, else the uid
 * the configured helper serves; in root user mode the daemon opens both as root and there is nothing to check.
 */
export function ownerAccessCheck(
  kvmDevice = KVM_DEVICE,
  groupPath = '/etc/group',
  tunDevice = TUN_DEVICE,
): Check {
  return async ({ layout }) => {
    let socket = '';
    try {
      socket = (await loadConfig(layout.configFile)).priv_helper_socket;
    } catch {
      // The config row says why; the record may still name the owner.
    }
    let recordUid: number | undefined;
    try {
      recordUid = readInstallRecord(layout.configDir)?.owner_uid;
    } catch (err) {
      return { name: NAME, status: 'WARN', details: [(err as Error).message] };
    }
    const hello = socket ? await helloPrivHelper(socket).catch(() => undefined) : undefined;
    const uid = recordUid ?? hello?.ownerUid;
    if (uid === undefined) {
      return {
        name: NAME,
        status: 'PASS',
        details: [
          socket
            ? 'no install record and the helper does not answer (see the privileges row)'
            : 'root user mode: the daemon opens /dev/kvm and its taps as root',
        ],
      };
    }
    let owner: LocalUser;
    try {
      owner = lookupUser(String(uid));
    } catch (err) {
      return { name: NAME, status: 'FAIL', details: [(err as Error).message] };
    }
    const results: CheckResult[] = [
      kvmRow(owner, kvmDevice, groupPath),
      tunRow(owner, tunDevice, groupPath),
      tapRow(owner, socket, hello?.ownerUid),
    ];
    const worst = results.find((r) => r.status === 'FAIL') ?? results.find((r) => r.status === 'WARN');
    return {
      name: NAME,
      status: worst?.status ?? 'PASS',
      details: results.flatMap((r) => r.details),
      ...(worst?.hint ? { hint: worst.hint } : {}),
    };
  };
}

function kvmRow(owner: LocalUser, device: string, groupPath: string): CheckResult {
  const access = deviceAccess(owner, device, groupPath);
  const who = `${owner.name} (uid ${owner.uid})`;
  switch (access.state) {
    case 'absent':
      return {
        name: NAME,
        status: 'WARN',
        details: [`${device}: absent, guests run under TCG, slower`],
        hint: 'enable virtualization (VT-x/AMD-V, or nested virtualization) to give guests KVM',
      };
    case 'ok':
      return { name: NAME, status: 'PASS', details: [`${device}: ${who} can open it`] };
    case 'denied':
      return {
        name: NAME,
        status: 'WARN',
        details: [
          `${device}: ${who} cannot open it (group ${access.group}, mode ${access.mode}); guests fall back to TCG`,
        ],
        hint: `sudo usermod -aG ${access.group} ${owner.name}, then restart bangerd (banger system restart)`,
      };
  }
}

/** The owner's VMMs open the tun device to attach the taps the helper made for them: without it none starts. */
function tunRow(owner: LocalUser, device: string, groupPath: string): CheckResult {
  const access = deviceAccess(owner, device, groupPath);
  const who = `${owner.name} (uid ${owner.uid})`;
  switch (access.state) {
    case 'absent':
      return {
        name: NAME,
        status: 'FAIL',
        details: [`${device}: absent, so no VM can attach its tap`],
        hint: 'sudo modprobe tun',
      };
    case 'ok':
      return { name: NAME, status: 'PASS', details: [`${device}: ${who} can open it`] };
    case 'denied':
      return {
        name: NAME,
        status: 'FAIL',
        details: [
          `${device}: ${who} cannot open it (mode ${access.mode}), so the owner's VMs cannot attach their taps`,
        ],
        hint: `sudo chmod 0666 ${device} (Debian's default; a udev rule KERNEL=="tun", MODE="0666" keeps it)`,
      };
  }
}

function tapRow(owner: LocalUser, socket: string, helperUid: number | undefined): CheckResult {
  if (!socket) {
    return {
      name: NAME,
      status: 'WARN',
      details: [`taps: no priv_helper_socket, so no helper makes taps for ${owner.name}`],
      hint: 'set priv_helper_socket in config.toml (banger system install writes it)',
    };
  }
  if (helperUid === undefined) {
    return {
      name: NAME,
      status: 'FAIL',
      details: ['taps: bangerd-root does not answer (see the privileges row)'],
      hint: 'start bangerd-root: sudo banger system restart, or sudo banger system run --owner USER',
    };
  }
  if (helperUid !== owner.uid) {
    return {
      name: NAME,
      status: 'FAIL',
      details: [`taps: bangerd-root serves uid ${helperUid}, not the owner ${owner.name} (uid ${owner.uid})`],
      hint: `reinstall for one owner: sudo banger system install --owner ${owner.name}`,
    };
  }
  return {
    name: NAME,
    status: 'PASS',
    details: [`taps: bangerd-root makes them owned by ${owner.name} (uid ${owner.uid})`],
  };
}
