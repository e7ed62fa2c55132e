import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { operationFailed } from '../model/errors.js';

/**
 * The state and cache hold the store, keys, disks and logs, and the daemon may run as root: none of it is
 * for other users. A directory or file that already exists (made by an older banger, another tool or a
 * loose umask) is tightened, not trusted as it is; one owned by another user is refused, since that user
 * could swap its contents under the daemon. Modes are checked and set on an open descriptor, so a rename
 * between the check and the chmod cannot redirect it.
 */
export function ensurePrivateDir(dir: string, uid: number = currentUid()): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A symlinked state dir (moved to a bigger disk) is fine; its target must be ours.
  withFd(dir, constants.O_RDONLY | constants.O_DIRECTORY, (fd) => tighten(fd, dir, 0o700, uid));
}

/** Creates `path` 0600 if missing (never through a symlink) and tightens an existing one. */
export function ensurePrivateFile(path: string, uid: number = currentUid()): void {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
  withFd(path, flags, (fd) => tighten(fd, path, 0o600, uid), 0o600);
}

/** Tightens `path` to 0600 if it exists; nothing is created (SQLite's -wal and -shm are its own). */
export function tightenIfPresent(path: string, uid: number = currentUid()): void {
  withFd(path, constants.O_RDONLY | constants.O_NOFOLLOW, (fd) => tighten(fd, path, 0o600, uid), 0, true);
}

function withFd(path: string, flags: number, use: (fd: number) => void, mode = 0, missingOk = false): void {
  let fd: number;
  try {
    fd = openSync(path, flags, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (missingOk && code === 'ENOENT') return;
    const why = code === 'ELOOP' ? 'is a symlink (refused)' : `cannot be opened (${code})`;
    throw operationFailed(`${path} ${why}`, { cause: err, hint: `move ${path} aside; banger recreates it` });
  }
  try {
    use(fd);
  } finally {
    closeSync(fd);
  }
}

function tighten(fd: number, path: string, mode: number, uid: number): void {
  const st = fstatSync(fd);
  if (st.uid !== uid) {
    throw operationFailed(
      `${path} is owned by uid ${st.uid}, not by uid ${uid} that runs banger; refusing to keep state where another user can change it`,
      {
        hint: `chown -R ${uid} ${path} if it is yours, or move it aside (or set BANGER_HOME to another place)`,
      },
    );
  }
  if ((st.mode & 0o7777) !== mode) fchmodSync(fd, mode);
}

function currentUid(): number {
  return process.getuid?.() ?? 0;
}
