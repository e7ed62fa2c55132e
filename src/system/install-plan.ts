import { isAbsolute, join } from 'node:path';
import { PRIV_HELPER_DEFAULT_SOCKET } from '../host/priv/socket-path.js';
import type { LocalUser } from '../host/users.js';
import { badRequest } from '../model/errors.js';
import { daemonUnit, helperUnit } from './units.js';

export const UNIT_DIR = '/etc/systemd/system';
export const SYSTEM_DIRS = {
  config: '/etc/banger',
  state: '/var/lib/banger',
  cache: '/var/cache/banger',
  run: '/run/banger',
  helperRun: '/run/banger-root',
  helperState: '/var/lib/banger-root',
} as const;

export interface PlannedDir {
  path: string;
  owner: string;
  group: string;
  mode: string;
}

export interface PlannedFile {
  path: string;
  owner: string;
  group: string;
  mode: string;
  /** Written only when absent (the admin's own config is never replaced). */
  keepIfPresent?: boolean;
  content: string;
}

export interface InstallPlan {
  owner: { name: string; uid: number; gid: number };
  dirs: PlannedDir[];
  files: PlannedFile[];
  commands: string[][];
}

export interface PlanInputs {
  owner: LocalUser;
  node: string;
  packageRoot: string;
  version: string;
  /** When the plan was made (the install record's timestamp). */
  now: Date;
}

/** Paths go into unit files unquoted: only plain absolute paths are accepted. */
const PLAIN_PATH = /^\/[A-Za-z0-9._/+-]*$/;
const HOME_TREES = ['/home/', '/root/', '/run/user/'];

/**
 * Everything `banger system install --owner USER` does, as data: the directories with owners and modes, the
 * files with their content, and the commands, in order. `--dry-run` prints it; nothing here touches the host.
 */
export function installPlan({ owner, node, packageRoot, version, now }: PlanInputs): InstallPlan {
  if (owner.uid === 0) {
    throw badRequest('--owner must not be root', {
      hint: 'the split exists so that the daemon runs unprivileged: name the user who will run VMs',
    });
  }
  for (const [what, path] of [
    ['node', node],
    ['banger', packageRoot],
  ] as const) {
    if (!isAbsolute(path) || !PLAIN_PATH.test(path)) {
      throw badRequest(`${what} is installed at ${JSON.stringify(path)}, which a unit file cannot name`, {
        hint: 'install banger and node under a path of letters, digits and . _ - + /',
      });
    }
  }
  const underHome = [node, packageRoot].some((p) => HOME_TREES.some((h) => `${p}/`.startsWith(h)));
  const unit = {
    owner: owner.name,
    node,
    packageRoot,
    helperSocket: PRIV_HELPER_DEFAULT_SOCKET,
    stateDir: SYSTEM_DIRS.state,
    helperProtectHome: underHome ? ('read-only' as const) : ('yes' as const),
  };
  const o = owner.name;
  return {
    owner: { name: owner.name, uid: owner.uid, gid: owner.gid },
    dirs: [
      { path: SYSTEM_DIRS.config, owner: 'root', group: 'root', mode: '0755' },
      { path: SYSTEM_DIRS.state, owner: o, group: String(owner.gid), mode: '0700' },
      { path: SYSTEM_DIRS.cache, owner: o, group: String(owner.gid), mode: '0700' },
      { path: SYSTEM_DIRS.run, owner: o, group: String(owner.gid), mode: '0700' },
      { path: SYSTEM_DIRS.helperRun, owner: 'root', group: 'root', mode: '0711' },
      { path: SYSTEM_DIRS.helperState, owner: 'root', group: 'root', mode: '0700' },
    ],
    files: [
      { path: join(UNIT_DIR, 'bangerd-root.service'), ...rootFile('0644'), content: helperUnit(unit) },
      { path: join(UNIT_DIR, 'bangerd.service'), ...rootFile('0644'), content: daemonUnit(unit) },
      {
        path: join(SYSTEM_DIRS.config, 'install.toml'),
        ...rootFile('0644'),
        content: installRecord(owner, node, packageRoot, version, now),
      },
      {
        path: join(SYSTEM_DIRS.config, 'config.toml'),
        ...rootFile('0644'),
        keepIfPresent: true,
        content: `# banger system config; see docs/config.md.\npriv_helper_socket = "${PRIV_HELPER_DEFAULT_SOCKET}"\n`,
      },
    ],
    commands: [
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'bangerd-root.service'],
      ['systemctl', 'enable', '--now', 'bangerd.service'],
    ],
  };
}

const rootFile = (mode: string) => ({ owner: 'root', group: 'root', mode });

function installRecord(owner: LocalUser, node: string, root: string, version: string, now: Date): string {
  return [
    '# Written by `banger system install`: who the system install serves and what it runs.',
    `owner_user = "${owner.name}"`,
    `owner_uid = ${owner.uid}`,
    `owner_gid = ${owner.gid}`,
    `owner_home = ${JSON.stringify(owner.home)}`,
    `version = "${version}"`,
    `node = "${node}"`,
    `package_root = "${root}"`,
    `helper_socket = "${PRIV_HELPER_DEFAULT_SOCKET}"`,
    `installed_at = "${now.toISOString()}"`,
    '',
  ].join('\n');
}
