import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BangerError, badRequest, operationFailed } from '../../model/errors.js';
import type { SavedState } from '../types.js';
import type { QmpClient } from './qmp.js';

/** The migration stream's file in a saved-state directory. */
export const QEMU_STATE_FILE = 'memory';
/** The guest's RAM as a plain file (a VM started with shareable RAM): the stream then holds no RAM. */
export const QEMU_RAM_FILE = 'ram';

/**
 * `x-ignore-shared`: RAM blocks mapped shared from a file are left out of the stream (both ends must set it,
 * it changes the stream's format). QEMU 7.2 checks only the source's block: a destination whose block is a
 * private mapping of a copy of that file simply receives no pages for it and runs on the file's content.
 */
async function ignoreSharedRam(qmp: QmpClient): Promise<void> {
  await qmp.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'x-ignore-shared', state: true }],
  });
}
const POLL_MS = 50;
/** Bounds one save: 256 MiB took 0.9 s under TCG here; a stuck `cat` (disk full) must not hold the VM forever. */
const SAVE_TIMEOUT_MS = 10 * 60_000;

/**
 * QEMU runs the `exec:` target through /bin/sh: only a path of plain characters is handed to it, so nothing
 * in it is ever shell syntax (banger makes these paths under its state dir; this is the second fence).
 */
export function shellSafePath(path: string): string {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(path))
    throw badRequest(`a saved-state path must be plain (letters, digits, . _ - /): ${JSON.stringify(path)}`);
  return path;
}

/**
 * Saves a paused guest with QEMU 7.2's migration to a command (`migrate exec:cat > FILE`; the `file:` target
 * is QEMU 8.2's). QEMU ends in `postmigrate`, still paused; `cont` resumes it (and takes its disks back).
 */
export async function saveQemuState(
  qmp: QmpClient,
  dir: string,
  opts: { signal?: AbortSignal; ramFile?: string; copy?: (from: string, to: string) => Promise<void> } = {},
): Promise<SavedState> {
  const file = shellSafePath(join(dir, QEMU_STATE_FILE));
  const version = (await qmp.execute('query-version')) as {
    qemu: { major: number; minor: number; micro: number };
  };
  if (opts.ramFile) await ignoreSharedRam(qmp);
  await qmp.execute('migrate', { uri: `exec:cat > ${file}` });
  const deadline = Date.now() + SAVE_TIMEOUT_MS;
  for (;;) {
    const info = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (info.status === 'completed') break;
    if (info.status === 'failed' || info.status === 'cancelled')
      throw operationFailed(`QEMU could not save the VM's state: ${info['error-desc'] ?? info.status}`);
    if (opts.signal?.aborted || Date.now() > deadline) {
      await qmp.execute('migrate_cancel').catch(() => {});
      if (opts.signal?.aborted) throw new BangerError('cancelled', 'saving the VM state was cancelled');
      throw operationFailed('QEMU did not finish saving the VM state in time');
    }
    await sleep(POLL_MS);
  }
  const { major, minor, micro } = version.qemu;
  const vmmVersion = `${major}.${minor}.${micro}`;
  if (!opts.ramFile || !opts.copy) return { files: [QEMU_STATE_FILE], vmmVersion };
  // The guest is paused (it stays so until the caller resumes it): the file is its RAM at the stream's end.
  await opts.copy(opts.ramFile, join(dir, QEMU_RAM_FILE));
  return { files: [QEMU_STATE_FILE, QEMU_RAM_FILE], ramFile: QEMU_RAM_FILE, vmmVersion };
}

/** How long one restore may take (reading ~100 MB under a loaded TCG host took about a second). */
const RESTORE_TIMEOUT_MS = 5 * 60_000;

/** QEMU's version as `major.minor.micro`. */
export async function qemuVersion(qmp: QmpClient): Promise<string> {
  const v = (await qmp.execute('query-version')) as { qemu: { major: number; minor: number; micro: number } };
  return `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}`;
}

/**
 * Loads a saved migration stream into a QEMU started with `-incoming defer` and leaves the guest running.
 * The version is compared first: a stream from another QEMU is refused before it is read.
 */
export async function restoreQemuState(
  qmp: QmpClient,
  memoryPath: string,
  expectedVersion: string,
  opts: { signal?: AbortSignal; ramFromFile?: boolean } = {},
): Promise<void> {
  const file = shellSafePath(memoryPath);
  const version = await qemuVersion(qmp);
  if (version !== expectedVersion)
    throw badRequest(
      `the snapshot was saved by QEMU ${expectedVersion} and this host runs QEMU ${version}: its state cannot be loaded`,
      { hint: 'take a new snapshot with this QEMU' },
    );
  if (opts.ramFromFile) await ignoreSharedRam(qmp);
  await qmp.execute('migrate-incoming', { uri: `exec:cat ${file}` });
  const deadline = Date.now() + RESTORE_TIMEOUT_MS;
  for (;;) {
    const info = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (info.status === 'failed' || info.status === 'cancelled')
      throw operationFailed(`QEMU could not load the snapshot: ${info['error-desc'] ?? info.status}`);
    const status = (await qmp.execute('query-status')) as { status?: string; running?: boolean };
    if (status.status !== 'inmigrate' && info.status !== 'active' && info.status !== 'setup') {
      // A guest saved while paused (a snapshot always is) comes back paused.
      if (!status.running) await qmp.execute('cont');
      return;
    }
    if (opts.signal?.aborted) throw new BangerError('cancelled', 'restoring the snapshot was cancelled');
    if (Date.now() > deadline) throw operationFailed('QEMU did not finish loading the snapshot in time');
    await sleep(POLL_MS);
  }
}
