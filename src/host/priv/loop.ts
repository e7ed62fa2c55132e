import { closeSync, readFileSync, realpathSync } from 'node:fs';
import { operationFailed } from '../../model/errors.js';
import type { Runner } from '../runner.js';
import { attachLoopFd, openBeneath } from './open-beneath.js';

/** One attached loop device as `losetup -J -l` reports it. */
export interface LoopEntry {
  device: string;
  backingFile: string;
}

/** Every attached loop device. The kernel appends ` (deleted)` when the backing file was unlinked. */
export async function listLoops(runner: Runner): Promise<LoopEntry[]> {
  const res = await runner.run(['losetup', '-J', '-l']);
  const text = res.stdout.trim();
  if (!text) return [];
  const doc = JSON.parse(text) as { loopdevices?: { name: string; 'back-file'?: string | null }[] };
  return (doc.loopdevices ?? []).map((l) => ({
    device: l.name,
    backingFile: (l['back-file'] ?? '').replace(/ \(deleted\)$/, ''),
  }));
}

export async function attachLoopDevice(runner: Runner, file: string, readOnly: boolean): Promise<string> {
  const res = await runner.run(['losetup', '--find', '--show', ...(readOnly ? ['--read-only'] : []), file]);
  const device = res.stdout.trim();
  if (!/^\/dev\/loop\d+$/.test(device)) {
    throw operationFailed(`losetup returned ${JSON.stringify(device)} instead of a loop device for ${file}`);
  }
  return device;
}

/**
 * Detaches `device` only if it is still backed by `backingFile` (a device number is reused as soon as it
 * is free); with `device: ''`, detaches every device backed by that file. Already gone counts as success.
 */
export async function detachLoopDevice(runner: Runner, device: string, backingFile: string): Promise<void> {
  const names = new Set([backingFile]);
  try {
    names.add(realpathSync(backingFile));
  } catch {
    // Deleted backing file: the kernel still reports the path it had.
  }
  const targets = (await listLoops(runner)).filter(
    (l) => names.has(l.backingFile) && (device === '' || l.device === device),
  );
  for (const t of targets) {
    const res = await runner.run(['losetup', '-d', t.device], { allowFailure: true });
    if (res.exitCode !== 0) {
      const still = (await listLoops(runner)).some((l) => l.device === t.device && names.has(l.backingFile));
      if (still)
        throw operationFailed(`could not detach ${t.device} (${t.backingFile}): ${res.stderr.trim()}`);
    }
  }
}

/**
 * For a caller that does not trust the tree's owner (the root helper): opens `file` inside `stateDir` with
 * openat2 (no symlink, no way out, checked by the kernel at the open) and attaches a loop device over that
 * descriptor, so a path component swapped between the helper's check and the attach cannot redirect it.
 * `losetup /proc/self/fd/N` would not do: losetup canonicalises the path and opens it again by name.
 * Returns the device and the backing file as the kernel reports it.
 */
export function attachLoopBeneath(
  stateDir: string,
  file: string,
  readOnly: boolean,
): { device: string; backingFile: string } {
  const fd = openBeneath(stateDir, file, readOnly);
  try {
    const device = attachLoopFd(fd, readOnly);
    return { device, backingFile: kernelBackingFile(device) ?? file };
  } finally {
    // The kernel holds its own reference to the file from LOOP_SET_FD on.
    closeSync(fd);
  }
}

/** /sys/block/loopN/loop/backing_file: the path of the file the kernel holds (what `losetup -l` shows). */
function kernelBackingFile(device: string): string | undefined {
  try {
    return readFileSync(`/sys/block/${device.slice('/dev/'.length)}/loop/backing_file`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
