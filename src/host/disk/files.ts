import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { FileIdentity } from '../../model/identity.js';
import { validateEntryUnder } from '../priv/validate.js';

export type { FileIdentity };

/**
 * Removes a file of a VM's directory; succeeds when it is already gone. The path must lie inside `vmDir`
 * with its parent resolved, so neither `..` nor a symlinked directory leads out; the file itself is never
 * followed: when it is a symlink (the dm-snapshot image link), the link goes, never its target.
 */
export async function teardownFile(vmDir: string, identity: FileIdentity): Promise<void> {
  // The whole directory is gone (a delete finished it): so is the file.
  if (!existsSync(vmDir)) return;
  await rm(validateEntryUnder(vmDir, identity.path), { force: true });
}
