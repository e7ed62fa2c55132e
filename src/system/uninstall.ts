import { lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BangerError } from '../model/errors.js';
import { SYSTEM_DIRS, UNIT_DIR } from './install-plan.js';
import { INSTALL_RECORD } from './install-record.js';

export const UNITS = ['bangerd.service', 'bangerd-root.service'] as const;

/** What `banger system uninstall` removes and runs, as data (printed before a purge, then done). */
export interface UninstallPlan {
  /** Run first: stop and disable both units, the daemon first. */
  before: string[][];
  /** Files removed: the units and the install record. */
  files: string[];
  /** With --purge: whole trees (state, cache, config, runtime, the helper's). */
  trees: string[];
  /** Run last. */
  after: string[][];
}

export function uninstallPlan(purge: boolean): UninstallPlan {
  return {
    before: [['systemctl', 'disable', '--now', ...UNITS]],
    files: [...UNITS.map((u) => join(UNIT_DIR, u)), join(SYSTEM_DIRS.config, INSTALL_RECORD)],
    trees: purge
      ? [
          SYSTEM_DIRS.state,
          SYSTEM_DIRS.cache,
          SYSTEM_DIRS.config,
          SYSTEM_DIRS.run,
          SYSTEM_DIRS.helperRun,
          SYSTEM_DIRS.helperState,
        ]
      : [],
    after: [['systemctl', 'daemon-reload']],
  };
}

export interface UninstallOptions {
  /** As for install: act below this directory, run no command. */
  root?: string;
  runCommand: (argv: string[]) => Promise<void>;
  say: (line: string) => void;
}

/**
 * Stops and disables the units (daemon first; VMs it runs are stopped with it), removes the unit files
 * and the record, and with a purge plan the trees. Already absent counts as done, so a second uninstall
 * (or one after a half-done install) succeeds. Returns the paths it removed.
 */
export async function applyUninstall(plan: UninstallPlan, opts: UninstallOptions): Promise<string[]> {
  const at = (p: string) => (opts.root ? join(opts.root, p) : p);
  // Units already gone (a second uninstall): systemctl would fail on them, and there is nothing to stop.
  const unitsPresent = UNITS.some((u) => exists(join(UNIT_DIR, u)));
  if (!opts.root && unitsPresent) for (const argv of plan.before) await run(argv, opts);
  const removed: string[] = [];
  for (const path of [...plan.files, ...plan.trees].map(at)) {
    if (!exists(path)) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
    opts.say(`removed ${path}`);
  }
  if (!opts.root) for (const argv of plan.after) await run(argv, opts);
  return removed;
}

async function run(argv: string[], opts: UninstallOptions): Promise<void> {
  try {
    await opts.runCommand(argv);
    opts.say(`ran ${argv.join(' ')}`);
  } catch (err) {
    throw new BangerError('operation_failed', `\`${argv.join(' ')}\` failed: ${(err as Error).message}`, {
      cause: err,
      hint: 'nothing was removed yet; see systemctl status bangerd bangerd-root, then run uninstall again',
    });
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
