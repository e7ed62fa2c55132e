import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { TeardownIdentity } from '../../model/identity.js';
import { validatePathUnder } from '../priv/validate.js';

export type FileIdentity = Extract<TeardownIdentity, { kind: 'file' }>;

/**
 * Removes a file banger created under its state dir; succeeds when it is already gone. Only the parent
 * directory is resolved: when the file is a symlink (the dm-snapshot image link), the link goes, never its
 * target.
 */
export async function teardownFile(stateDir: string, identity: FileIdentity): Promise<void> {
  const parent = validatePathUnder(stateDir, dirname(identity.path));
  await rm(join(parent, basename(identity.path)), { force: true });
}
