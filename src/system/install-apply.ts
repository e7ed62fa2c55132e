import {
  chmodSync,
  chownSync,
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { BangerError, operationFailed } from '../model/errors.js';
import type { InstallPlan, PlannedDir, PlannedFile } from './install-plan.js';

export interface ApplyOptions {
  /**
   * Install into this directory instead of `/` (as `systemctl --root` or a packager's DESTDIR): every
   * planned path is written below it, owners and modes as planned, and no command is run.
   */
  root?: string;
  /** Runs one planned command (systemctl); throws on failure. */
  runCommand: (argv: string[]) => Promise<void>;
  say: (line: string) => void;
}

/** What an install did, in order: what `--dry-run` printed, now done. */
export interface ApplyResult {
  dirs: { path: string; created: boolean }[];
  files: { path: string; action: 'written' | 'replaced' | 'kept' }[];
  commands: string[][];
}

type Undo = () => void;

/**
 * Carries out an install plan: directories (made or checked, then owner and mode set), files written
 * atomically (temporary name, fsync, owner and mode, rename), then the commands. Everything is checked
 * before the first write. If a directory or file step fails, every earlier step is undone (files put
 * back as they were, made directories removed) and the error says so; if a command fails, the files stay
 * and the error says what ran and how to undo (`banger system uninstall`).
 */
export async function applyInstallPlan(plan: InstallPlan, opts: ApplyOptions): Promise<ApplyResult> {
  const at = (p: string) => (opts.root ? join(opts.root, p) : p);
  const id = (name: string, fallback: number) => (name === 'root' ? 0 : fallback);
  const uidOf = (d: PlannedDir | PlannedFile) => id(d.owner, plan.owner.uid);
  const gidOf = (d: PlannedDir | PlannedFile) => (d.group === 'root' ? 0 : Number(d.group));
  preflight(plan, at);

  const undo: Undo[] = [];
  const result: ApplyResult = { dirs: [], files: [], commands: [] };
  try {
    for (const d of plan.dirs) {
      const before = lstatOrUndefined(at(d.path));
      const created = makeDirs(at(d.path), undo);
      if (before) undo.push(() => chmodSync(at(d.path), before.mode & 0o7777));
      chownSync(at(d.path), uidOf(d), gidOf(d));
      chmodSync(at(d.path), Number.parseInt(d.mode, 8));
      result.dirs.push({ path: at(d.path), created });
    }
    for (const f of plan.files) {
      const path = at(f.path);
      makeDirs(dirname(path), undo);
      const previous = readIfPresent(path);
      if (previous !== undefined && f.keepIfPresent) {
        result.files.push({ path, action: 'kept' });
        continue;
      }
      writeAtomic(path, f.content, Number.parseInt(f.mode, 8), uidOf(f), gidOf(f));
      undo.push(previous === undefined ? () => rmSync(path, { force: true }) : () => restore(path, previous));
      result.files.push({ path, action: previous === undefined ? 'written' : 'replaced' });
    }
  } catch (err) {
    const failures = rollBack(undo);
    throw operationFailed(
      `system install failed and was rolled back${failures ? ` (except: ${failures})` : ''}: ${(err as Error).message}`,
      { cause: err, hint: 'nothing of this install is left; fix the cause and run it again' },
    );
  }
  if (opts.root) return result;
  for (const argv of plan.commands) {
    try {
      await opts.runCommand(argv);
    } catch (err) {
      const done = result.commands.map((c) => c.join(' ')).join('; ') || 'none';
      throw new BangerError(
        'operation_failed',
        `system install wrote its files but \`${argv.join(' ')}\` failed: ${(err as Error).message}`,
        {
          cause: err,
          hint: `commands that ran: ${done}. See journalctl -u bangerd-root -u bangerd; undo with: sudo banger system uninstall`,
        },
      );
    }
    result.commands.push(argv);
    opts.say(`ran ${argv.join(' ')}`);
  }
  return result;
}

/**
 * Refuses before anything is written: an existing planned directory must be a real directory (not a
 * symlink) owned by its planned owner, so an install never silently takes over someone else's tree.
 */
function preflight(plan: InstallPlan, at: (p: string) => string): void {
  for (const d of plan.dirs) {
    const st = lstatOrUndefined(at(d.path));
    if (!st) continue;
    const want = d.owner === 'root' ? 0 : plan.owner.uid;
    if (st.isSymbolicLink() || !st.isDirectory()) {
      throw operationFailed(`${at(d.path)} exists and is not a directory (symlinks are refused)`, {
        hint: `remove it, then run the install again`,
      });
    }
    if (st.uid !== want) {
      throw operationFailed(`${at(d.path)} is owned by uid ${st.uid}, not ${d.owner} (uid ${want})`, {
        hint: `hand it over with: chown -R ${d.owner} ${at(d.path)}`,
      });
    }
  }
  for (const f of plan.files) {
    const st = lstatOrUndefined(at(f.path));
    if (st && !st.isFile()) {
      throw operationFailed(`${at(f.path)} exists and is not a regular file`, {
        hint: 'remove it, then run the install again',
      });
    }
  }
}

/** mkdir -p that records each directory it made, so a rollback removes exactly those. */
function makeDirs(path: string, undo: Undo[]): boolean {
  if (lstatOrUndefined(path)) return false;
  makeDirs(dirname(path), undo);
  mkdirSync(path, { mode: 0o755 });
  undo.push(() => rmdirSync(path));
  return true;
}

/** tmp + fsync + owner/mode + rename: a reader sees the old file or the whole new one, never half. */
export function writeAtomic(
  path: string,
  content: string | Buffer,
  mode: number,
  uid: number,
  gid: number,
): void {
  const tmp = `${path}.banger-tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    chownSync(tmp, uid, gid);
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(dirname(path));
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function restore(path: string, previous: { content: Buffer; mode: number; uid: number; gid: number }) {
  writeAtomic(path, previous.content, previous.mode, previous.uid, previous.gid);
}

function readIfPresent(path: string) {
  const st = lstatOrUndefined(path);
  if (!st) return undefined;
  return { content: readFileSync(path), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

function rollBack(undo: Undo[]): string {
  const failed: string[] = [];
  for (const step of undo.reverse()) {
    try {
      step();
    } catch (err) {
      failed.push((err as Error).message);
    }
  }
  return failed.join('; ');
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
