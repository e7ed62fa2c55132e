import { readFile } from 'node:fs/promises';
import type { Runner } from '../../../host/index.js';

/** Decodes the octal escapes (`\040` for a space) that /proc/self/mountinfo uses in paths. */
const decodeMountPath = (p: string) =>
  p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/**
 * Unmounts everything mounted strictly below `dir`, deepest first (never `dir` itself: the image store may
 * be a mount of its own). debootstrap mounts /proc and /sys inside
 * its target while it runs; if it is cancelled or crashes they stay mounted, and removing the staging
 * directory would then walk into the host's /proc and /sys. Lazy unmounts: a busy mount still detaches.
 */
export async function unmountUnder(runner: Runner, dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = info
    .split('\n')
    .map((line) => decodeMountPath(line.split(' ')[4] ?? ''))
    .filter((p) => p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await runner.run(['umount', '-l', p], { allowFailure: true });
}
