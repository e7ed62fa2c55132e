import { lstatSync } from 'node:fs';
import type { Runner } from '../host/runner.js';
import { BangerError } from '../model/errors.js';

/**
 * `/run/systemd/system` exists only when systemd is PID 1 (the check sd_booted(3) makes): a host where
 * systemd is installed but not running (a container, this kind of CI) has `systemctl` and no manager.
 */
export const SYSTEMD_RUN_DIR = '/run/systemd/system';

/** true when systemd is the running init; `runDir` is a parameter for tests only. */
export function systemdBooted(runDir: string = SYSTEMD_RUN_DIR): boolean {
  try {
    return lstatSync(runDir).isDirectory();
  } catch {
    return false;
  }
}

/** The refusal every systemd-only verb gives on a host without systemd, naming what to use instead. */
export function noSystemdError(verb: string): BangerError {
  return new BangerError(
    'bad_request',
    `banger system ${verb} needs systemd as the running init, and this host's PID 1 is not systemd`,
    {
      hint: 'run the helper and the daemon in the foreground instead: sudo banger system run --owner USER (docs/privileges.md)',
    },
  );
}

/** `root` verbs change the host; they refuse early, before anything is written. */
export function requireRoot(verb: string): void {
  if (process.geteuid?.() !== 0) {
    throw new BangerError('unauthorized', `banger system ${verb} must run as root`, {
      hint: `run it with sudo: sudo banger system ${verb} ...`,
    });
  }
}

/** The state of one unit as systemd reports it (`systemctl show`), without parsing human output. */
export interface UnitState {
  unit: string;
  /** active, inactive, failed, activating... */
  active: string;
  /** enabled, disabled, not-found... */
  enabled: string;
  mainPid: number;
}

export async function unitState(runner: Runner, unit: string): Promise<UnitState> {
  const res = await runner.run(
    ['systemctl', 'show', unit, '--property=ActiveState,UnitFileState,MainPID', '--no-pager'],
    { allowFailure: true },
  );
  const props = new Map(
    res.stdout
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string | undefined])
      .filter((kv): kv is [string, string] => kv[1] !== undefined),
  );
  return {
    unit,
    active: props.get('ActiveState') || 'unknown',
    enabled: props.get('UnitFileState') || 'not-found',
    mainPid: Number(props.get('MainPID') ?? 0) || 0,
  };
}
