import { realpathSync } from 'node:fs';
import { operationFailed } from '../../model/errors.js';
import type { Runner } from '../runner.js';

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
