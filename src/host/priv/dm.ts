import { operationFailed } from '../../model/errors.js';
import type { Runner } from '../runner.js';
import type { DmSnapshotRequest } from './types.js';

/** Snapshot chunk size: 8 sectors (4 KiB), the page size, so a small guest write copies little. */
export const DEFAULT_CHUNK_SECTORS = 8;
/** `dmsetup remove` of a device still closing (VMM just killed) fails with EBUSY for a moment. */
const REMOVE_ATTEMPTS = 5;

/** The device-mapper table line for a persistent (`P`) snapshot of `origin` with `cow` as exception store. */
export function snapshotTable(req: DmSnapshotRequest): string {
  return `0 ${req.sectors} snapshot ${req.origin} ${req.cow} P ${req.chunkSectors ?? DEFAULT_CHUNK_SECTORS}`;
}

/** true when the named device exists; no device-mapper at all means it cannot exist. */
export async function dmExists(runner: Runner, name: string): Promise<boolean> {
  const res = await runner.run(['dmsetup', 'info', name], { allowFailure: true });
  return res.exitCode === 0;
}

export async function createDmSnapshotDevice(runner: Runner, req: DmSnapshotRequest): Promise<string> {
  if (!(await dmExists(runner, req.name))) {
    await runner.run(['dmsetup', 'create', req.name, '--table', snapshotTable(req)]);
  }
  return `/dev/mapper/${req.name}`;
}

export async function removeDmDevice(runner: Runner, name: string): Promise<void> {
  let last = '';
  for (let i = 0; i < REMOVE_ATTEMPTS; i++) {
    if (!(await dmExists(runner, name))) return;
    const res = await runner.run(['dmsetup', 'remove', '--retry', name], { allowFailure: true });
    if (res.exitCode === 0) return;
    last = res.stderr.trim();
  }
  throw operationFailed(`could not remove device-mapper device ${name}: ${last}`, {
    hint: `something still holds it open; check with: dmsetup info ${name}`,
  });
}
