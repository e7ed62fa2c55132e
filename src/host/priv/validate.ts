import { lstatSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { badRequest, operationFailed } from '../../model/errors.js';
import type { ProcessProof } from '../proc.js';

/** Linux IFNAMSIZ is 16 bytes including the NUL, so an interface name holds at most 15 bytes. */
export const IFACE_NAME_MAX_BYTES = 15;
/** banger's bridge is `br-fc` or `br-fc-<suffix>` (the original's rule), so foreign bridges are never touched. */
const BRIDGE_RE = /^br-fc(-[a-z0-9][a-z0-9-]*)?$/;
/** Taps are numbered `tap-fc-NNNN` (four or more digits). */
const TAP_RE = /^tap-fc-\d{4,8}$/;
/** Device-mapper devices banger creates; anything else belongs to someone else (LVM, LUKS...). */
const DM_RE = /^banger-[a-z0-9][a-z0-9-]{0,100}$/;
const LOOP_RE = /^\/dev\/loop\d{1,6}$/;
/** nft table names banger may create: `banger` or `banger_<suffix>`. */
const TABLE_RE = /^banger(_[a-z0-9_]{1,32})?$/;
/** An instance id: 128 random bits in hex, the suffix of the mark banger writes on its links. */
const INSTANCE_ID_RE = /^[0-9a-f]{32}$/;
/** A generic interface name as the kernel accepts it, without `/`, whitespace or `:`. */
const IFACE_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

/** Signals a caller may send to a VMM process; STOP/CONT, numeric and real-time signals are refused. */
export const ALLOWED_SIGNALS = ['TERM', 'KILL', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2', 'ABRT'] as const;
export type AllowedSignal = `SIG${(typeof ALLOWED_SIGNALS)[number]}`;

/** Any Linux interface name: 1..15 bytes, no separators. */
export function validateIfaceName(name: string): string {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > IFACE_NAME_MAX_BYTES || !IFACE_RE.test(name)) {
    throw badRequest(`invalid interface name ${JSON.stringify(name)}`, {
      hint: `interface names are 1 to ${IFACE_NAME_MAX_BYTES} bytes of letters, digits, '.', '-', '_' (kernel IFNAMSIZ)`,
    });
  }
  return name;
}

/** Only banger's bridges: `br-fc` or `br-fc-*`, within the kernel's name limit. */
export function validateBridgeName(name: string): string {
  validateIfaceName(name);
  if (!BRIDGE_RE.test(name)) {
    throw badRequest(`refusing bridge ${JSON.stringify(name)}: not a banger bridge`, {
      hint: "bridge_name must be 'br-fc' or start with 'br-fc-'",
    });
  }
  return name;
}

/** Only banger's taps: `tap-fc-NNNN`. */
export function validateTapName(name: string): string {
  validateIfaceName(name);
  if (!TAP_RE.test(name)) {
    throw badRequest(`refusing tap ${JSON.stringify(name)}: not a banger tap`, {
      hint: "banger taps are named 'tap-fc-NNNN'",
    });
  }
  return name;
}

/** An instance id: anything else is refused, never used as a mark. */
export function validateInstanceId(id: string): string {
  if (!INSTANCE_ID_RE.test(id)) throw badRequest(`invalid instance id ${JSON.stringify(id.slice(0, 64))}`);
  return id;
}

/** Dotted-quad IPv4 without leading zeros (which some tools read as octal). */
export function validateIPv4(address: string): string {
  const parts = address.split('.');
  const ok = parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
  if (!ok)
    throw badRequest(`invalid IPv4 address ${JSON.stringify(address)}`, {
      hint: 'use a form like 172.16.0.1',
    });
  return address;
}

/** Prefix length of the bridge subnet, 8..32 as the original's helper accepts. */
export function validatePrefix(prefix: number | string): number {
  const n = typeof prefix === 'number' ? prefix : /^\d{1,2}$/.test(prefix) ? Number(prefix) : Number.NaN;
  if (!Number.isInteger(n) || n < 8 || n > 32) {
    throw badRequest(`invalid prefix length ${JSON.stringify(prefix)}`, {
      hint: 'use a number from 8 to 32',
    });
  }
  return n;
}

export function validateDmName(name: string): string {
  if (!DM_RE.test(name)) {
    throw badRequest(`refusing device-mapper name ${JSON.stringify(name)}: not a banger device`, {
      hint: "banger device-mapper names start with 'banger-'",
    });
  }
  return name;
}

export function validateLoopDevice(device: string): string {
  if (!LOOP_RE.test(device)) {
    throw badRequest(`refusing ${JSON.stringify(device)}: not a loop device`, {
      hint: 'expected /dev/loopN',
    });
  }
  return device;
}

export function validateTableName(name: string): string {
  if (!TABLE_RE.test(name)) {
    throw badRequest(`refusing nft table ${JSON.stringify(name)}: not a banger table`, {
      hint: "banger's tables are named 'banger' or 'banger_<suffix>'",
    });
  }
  return name;
}

/** Network namespace names as `ip netns` stores them under /run/netns. */
export function validateNetns(name: string | undefined): string | undefined {
  if (name === undefined || name === '') return undefined;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw badRequest(`invalid network namespace ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * Normalises a signal name (`term`, `SIGTERM`, `SigKill`) to `SIGTERM` form, refusing anything off the
 * allow-list: STOP/CONT would freeze a VMM, real-time and numeric signals have no agreed meaning.
 */
export function validateSignal(signal: string): AllowedSignal {
  const upper = signal.trim().toUpperCase();
  const bare = upper.startsWith('SIG') ? upper.slice(3) : upper;
  if (!(ALLOWED_SIGNALS as readonly string[]).includes(bare)) {
    throw badRequest(`refusing signal ${JSON.stringify(signal)}`, {
      hint: `allowed: ${ALLOWED_SIGNALS.join(' ')}`,
    });
  }
  return `SIG${bare}` as AllowedSignal;
}

export function validatePid(pid: number): number {
  if (!Number.isInteger(pid) || pid <= 1 || pid > 4_194_304) throw badRequest(`invalid pid ${pid}`);
  return pid;
}

/**
 * A signal request must carry its whole proof: start time, the argument the process's argv must hold
 * (non-empty, so "every process" cannot match) and, when given, an absolute executable path.
 */
export function validateProcessProof(req: {
  pid: number;
  startTime: number;
  arg: string;
  exe?: string;
}): ProcessProof {
  const pid = validatePid(req.pid);
  if (!Number.isInteger(req.startTime) || req.startTime < 0)
    throw badRequest(`invalid start time ${JSON.stringify(req.startTime)}`);
  if (typeof req.arg !== 'string' || req.arg === '' || req.arg.includes('\0'))
    throw badRequest(`invalid proof argument ${JSON.stringify(req.arg)}`, {
      hint: 'a process is signalled only with an argument its argv must hold',
    });
  if (
    req.exe !== undefined &&
    (typeof req.exe !== 'string' || !isAbsolute(req.exe) || req.exe.includes('\0'))
  )
    throw badRequest(`invalid executable ${JSON.stringify(req.exe)}`);
  return { pid, startTime: req.startTime, arg: req.arg, ...(req.exe !== undefined ? { exe: req.exe } : {}) };
}

/**
 * Resolves `path` and checks it lies strictly inside `stateDir`, following symlinks on every existing part,
 * so a symlink planted inside the state dir cannot point a privileged operation at /etc or /dev.
 * The path need not exist yet (a file about to be created); its deepest existing ancestor is resolved.
 */
export function validatePathUnder(stateDir: string, path: string): string {
  if (!isAbsolute(path) || path.includes('\0')) {
    throw badRequest(`refusing path ${JSON.stringify(path)}: must be absolute`);
  }
  let root: string;
  try {
    root = realpathSync(stateDir);
  } catch (err) {
    throw operationFailed(`banger's state dir ${stateDir} does not exist`, { cause: err });
  }
  const resolved = resolveExisting(normalize(path));
  const rel = relative(root, resolved);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    throw badRequest(`refusing path ${JSON.stringify(path)}: outside banger's state dir ${stateDir}`, {
      hint: 'privileged operations only touch files under the state dir',
    });
  }
  return resolved;
}

/**
 * Checks that `path` names an entry strictly inside `root` with its parent directory resolved (symlinks
 * followed, so a symlinked directory cannot lead out) but the entry itself not followed, so a symlink
 * inside the tree can be removed without touching its target. Refuses paths that are not in normal form
 * (`..`, `.`, doubled `/`): banger never records one. Returns the resolved path to act on.
 */
export function validateEntryUnder(root: string, path: string): string {
  if (!isAbsolute(path) || path.includes('\0') || normalize(path) !== path || path.endsWith(sep)) {
    throw badRequest(`refusing path ${JSON.stringify(path)}: not an absolute normal path`);
  }
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (err) {
    throw operationFailed(`directory ${root} does not exist`, { cause: err });
  }
  const resolved = join(resolveExisting(dirname(path)), basename(path));
  const rel = relative(realRoot, resolved);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw badRequest(`refusing path ${JSON.stringify(path)}: outside ${root}`, {
      hint: 'banger only removes files inside the VM directory it recorded them for',
    });
  }
  return resolved;
}

function resolveExisting(path: string): string {
  const tail: string[] = [];
  let cur = path;
  // lstat, not exists: a dangling symlink "does not exist" but creating a file through it would follow it.
  while (!lexists(cur)) {
    const parent = dirname(cur);
    if (parent === cur) break;
    tail.unshift(cur.slice(parent.length).replace(/^\//, ''));
    cur = parent;
  }
  try {
    return join(realpathSync(cur), ...tail);
  } catch (err) {
    throw badRequest(`refusing path ${JSON.stringify(path)}: ${cur} cannot be resolved (dangling symlink?)`, {
      cause: err,
    });
  }
}

function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stricter than validatePathUnder, for a caller that does not trust the tree's owner (the root helper
 * serving the owner's daemon): the path must be absolute and normal, lie lexically inside `stateDir`, and no
 * existing component from `stateDir` down (the state dir included) may be a symlink. A symlink is refused,
 * not followed, even when it points back inside the tree. Returns the path unchanged.
 */
export function validatePathNoSymlinks(stateDir: string, path: string): string {
  if (!isAbsolute(path) || path.includes('\0') || normalize(path) !== path || path.endsWith(sep)) {
    throw badRequest(`refusing path ${JSON.stringify(path)}: not an absolute normal path`);
  }
  const rel = relative(stateDir, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw badRequest(`refusing path ${JSON.stringify(path)}: outside the owner's state dir ${stateDir}`, {
      hint: 'privileged operations only touch files under the state dir',
    });
  }
  let cur = stateDir;
  for (const part of ['', ...rel.split(sep)]) {
    cur = part === '' ? cur : join(cur, part);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(cur);
    } catch {
      break; // the rest does not exist yet: nothing below it can be a symlink
    }
    if (st.isSymbolicLink()) {
      throw badRequest(`refusing path ${JSON.stringify(path)}: ${cur} is a symlink`, {
        hint: 'the root helper follows no symlink inside the state dir',
      });
    }
  }
  return path;
}
