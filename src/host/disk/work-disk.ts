import { open, rm, stat, truncate } from 'node:fs/promises';
import { badRequest, operationFailed } from '../../model/errors.js';
import { formatSize } from '../../model/sizes.js';
import { runConfined } from '../confine.js';
import type { Runner } from '../runner.js';
import type { FileIdentity } from './files.js';

/**
 * mkfs options of the original: the root dir owned by root (the guest's /root), and lazy inode-table and
 * journal init so a multi-GiB disk is made in milliseconds (the guest kernel finishes the job).
 */
export const MKFS_EXTRA_OPTIONS = 'root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1';

/** The identity to record before `createWorkDisk`. */
export function planWorkDisk(path: string): FileIdentity {
  return { kind: 'file', path };
}

/**
 * A sparse file of `sizeBytes` holding a fresh ext4; replaces a half-made one left by a crash. With
 * `seedDir`, the filesystem starts with that directory's contents (`mkfs.ext4 -d`) and its root gets the
 * directory's mode (mkfs leaves it 0755).
 */
export async function createWorkDisk(
  runner: Runner,
  { path, sizeBytes, seedDir }: { path: string; sizeBytes: number; seedDir?: string },
): Promise<FileIdentity> {
  if (!Number.isInteger(sizeBytes) || sizeBytes < 16 * 1024 * 1024) {
    throw badRequest(`work disk size ${sizeBytes} is too small`, { hint: 'use at least 16MiB' });
  }
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.truncate(sizeBytes);
  } finally {
    await fh.close();
  }
  try {
    const seed = seedDir ? ['-d', seedDir] : [];
    const made = await runner.run(['mkfs.ext4', '-F', '-q', '-E', MKFS_EXTRA_OPTIONS, ...seed, path], {
      allowFailure: true,
    });
    if (made.exitCode !== 0) {
      const why = made.stderr.trim();
      throw /allocate|no space|too many/i.test(why) && seedDir
        ? badRequest(`the image's /root does not fit a ${formatSize(sizeBytes)} work disk: ${why}`, {
            hint: 'give the VM a larger disk: --disk-size',
          })
        : operationFailed(`mkfs.ext4 failed on ${path}: ${why}`);
    }
    if (seedDir) {
      const mode = 0o40000 | ((await stat(seedDir)).mode & 0o7777); // a directory, with the seed's bits
      await runner.run(['debugfs', '-w', '-R', `set_inode_field / mode 0${mode.toString(8)}`, path]);
    }
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
  return planWorkDisk(path);
}

/**
 * Grows an ext4 disk image offline: `e2fsck -f` (resize2fs refuses without a fresh check), extend the
 * file, `resize2fs`. Shrinking is refused; the same size is a no-op. The guest wrote this filesystem, so
 * both tools run confined (see runConfined): as uid 65534, given the disk as a descriptor.
 */
export async function growWorkDisk(
  runner: Runner,
  { path, sizeBytes }: { path: string; sizeBytes: number },
): Promise<void> {
  const current = (await stat(path)).size;
  if (sizeBytes === current) return;
  if (sizeBytes < current) {
    throw badRequest(`cannot shrink ${path} from ${current} to ${sizeBytes} bytes`, {
      hint: 'work disks only grow',
    });
  }
  // -p repairs what is safe without asking; exit 1 means "errors corrected", which is fine to grow.
  const fsck = await runConfined(runner, path, (disk) => ['e2fsck', '-f', '-p', disk], {
    allowFailure: true,
  });
  if (fsck.exitCode !== 0 && fsck.exitCode !== 1) {
    throw operationFailed(`e2fsck found problems it could not fix in ${path}: ${fsck.stderr.trim()}`, {
      hint: `inspect it with: e2fsck -f ${path}`,
    });
  }
  await truncate(path, sizeBytes);
  const resize = await runConfined(runner, path, (disk) => ['resize2fs', disk], { allowFailure: true });
  if (resize.exitCode !== 0) throw operationFailed(`resize2fs failed on ${path}: ${resize.stderr.trim()}`);
}
