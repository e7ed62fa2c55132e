import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { operationFailed } from '../model/errors.js';
import { ensurePrivateDir } from './private-paths.js';

/** AF_UNIX socket paths are limited to 108 bytes including the NUL (sun_path). */
export const UNIX_SOCKET_PATH_MAX = 107;

export type Mode = 'user' | 'system';

/** Every directory and file banger creates, in one place. */
export interface Layout {
  mode: Mode;
  configDir: string;
  stateDir: string;
  cacheDir: string;
  runtimeDir: string;
  configFile: string;
  /** SQLite store. */
  dbPath: string;
  /** The daemon's unix socket (0600 in a 0700 dir). */
  socketPath: string;
  /** The daemon's pino JSON log. */
  logPath: string;
  /** The daemon's pid file, used by `daemon stop` and the CLI's auto-restart. */
  pidPath: string;
  imagesDir: string;
  kernelsDir: string;
  vmsDir: string;
  /** Content-addressed OCI blobs: <ociDir>/blobs/sha256/<hex>. */
  ociDir: string;
  sshDir: string;
  /** This instance's random id (0600), the suffix of the mark on every link it creates. */
  instanceIdPath: string;
}

export interface LayoutInputs {
  env: NodeJS.ProcessEnv;
  uid: number;
  home: string;
  mode: Mode;
}

/**
 * Pure function of (env, uid, home, mode). `BANGER_HOME` isolates a whole instance under one directory
 * (tests, side-by-side installs); otherwise user mode follows XDG and system mode the FHS.
 */
export function resolveLayout({ env, uid, home, mode }: LayoutInputs): Layout {
  let configDir: string;
  let stateDir: string;
  let cacheDir: string;
  let runtimeDir: string;
  if (env.BANGER_HOME) {
    const root = resolve(env.BANGER_HOME);
    configDir = join(root, 'config');
    stateDir = join(root, 'state');
    cacheDir = join(root, 'cache');
    runtimeDir = join(root, 'run');
  } else if (mode === 'system') {
    configDir = '/etc/banger';
    stateDir = '/var/lib/banger';
    cacheDir = '/var/cache/banger';
    runtimeDir = '/run/banger';
  } else {
    configDir = join(env.XDG_CONFIG_HOME || join(home, '.config'), 'banger');
    stateDir = join(env.XDG_STATE_HOME || join(home, '.local', 'state'), 'banger');
    cacheDir = join(env.XDG_CACHE_HOME || join(home, '.cache'), 'banger');
    runtimeDir = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'banger') : `/tmp/banger-runtime-${uid}`;
  }
  return {
    mode,
    configDir,
    stateDir,
    cacheDir,
    runtimeDir,
    configFile: env.BANGER_CONFIG || join(configDir, 'config.toml'),
    dbPath: join(stateDir, 'banger.db'),
    socketPath: join(runtimeDir, 'bangerd.sock'),
    logPath: join(stateDir, 'bangerd.log'),
    pidPath: join(runtimeDir, 'bangerd.pid'),
    imagesDir: join(stateDir, 'images'),
    kernelsDir: join(stateDir, 'kernels'),
    vmsDir: join(stateDir, 'vms'),
    ociDir: join(cacheDir, 'oci'),
    sshDir: join(stateDir, 'ssh'),
    instanceIdPath: instanceIdPath(stateDir),
  };
}

/** Where a state dir keeps its instance id; the privileged link operations read it from there. */
export function instanceIdPath(stateDir: string): string {
  return join(stateDir, 'instance-id');
}

/** The layout for this process: system mode when `BANGER_SYSTEM=1`, user mode otherwise. */
export function currentLayout(env: NodeJS.ProcessEnv = process.env): Layout {
  const mode: Mode = env.BANGER_SYSTEM === '1' ? 'system' : 'user';
  return resolveLayout({ env, uid: process.getuid?.() ?? 0, home: env.HOME || homedir(), mode });
}

/**
 * Creates the runtime dir 0700 and checks that it is a real directory we own: a symlink or a directory
 * owned by someone else in /tmp would let another user intercept the daemon socket.
 */
export function ensureRuntimeDir(dir: string, uid: number = process.getuid?.() ?? 0): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw operationFailed(`runtime dir ${dir} is not a directory (symlinks are refused)`);
  }
  if (st.uid !== uid) throw operationFailed(`runtime dir ${dir} is owned by uid ${st.uid}, not ${uid}`);
  if ((st.mode & 0o077) !== 0) {
    throw operationFailed(`runtime dir ${dir} has mode ${(st.mode & 0o777).toString(8)}, expected 700`, {
      hint: `chmod 700 ${dir}`,
    });
  }
}

/**
 * Creates the state, cache and config directories. State and cache are 0700 and ours (they hold keys,
 * disks and the store): existing ones are tightened, ones owned by another user refused (ensurePrivateDir).
 */
export function ensureLayoutDirs(layout: Layout): void {
  const { stateDir, imagesDir, kernelsDir, vmsDir, sshDir, cacheDir } = layout;
  for (const dir of [stateDir, imagesDir, kernelsDir, vmsDir, sshDir, cacheDir]) ensurePrivateDir(dir);
  mkdirSync(layout.configDir, { recursive: true, mode: 0o755 });
  ensureRuntimeDir(layout.runtimeDir);
}

let cachedRoot: string | undefined;

/** The package root (where package.json is), for files shipped beside the code (catalogs, guest assets). */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the banger code');
    dir = parent;
  }
  cachedRoot = dir;
  return dir;
}
