import { open, rm, stat, truncate } from 'node:fs/promises';
import { badRequest, operationFailed } from '../../model/errors.js';
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

/** A sparse file of `sizeBytes` holding a fresh ext4; replaces a half-made one left by a crash. */
export async function createWorkDisk(
  runner: Runner,
  { path, sizeBytes }: { path: string; sizeBytes: number },
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
    await runner.run(['mkfs.ext4', '-F', '-q', '-E', MKFS_EXTRA_OPTIONS, path]);
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
  return planWorkDisk(path);
}

/**
 * Grows an ext4 disk image offline: `e2fsck -f` (resize2fs refuses without a fresh check), extend the
 * file, `resize2fs`. Shrinking is refused; the same size is a no-op.
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
  const fsck = await runner.run(['e2fsck', '-f', '-p', path], { allowFailure: true });
  if (fsck.exitCode !== 0 && fsck.exitCode !== 1) {
    throw operationFailed(`e2fsck found problems it could not fix in ${path}: ${fsck.stderr.trim()}`, {
      hint: `inspect it with: e2fsck -f ${path}`,
    });
  }
  await truncate(path, sizeBytes);
  await runner.run(['resize2fs', path]);
}
