import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { operationFailed } from '../model/errors.js';

/** The install record's name in the config dir (`/etc/banger/install.toml`). */
export const INSTALL_RECORD = 'install.toml';
/** The record is a dozen lines; anything bigger is not ours. */
const RECORD_MAX_BYTES = 64 * 1024;

/** What `banger system install` wrote about the install: who it serves and what it runs. */
export const installRecordSchema = z.strictObject({
  owner_user: z.string(),
  owner_uid: z.number().int().nonnegative(),
  owner_gid: z.number().int().nonnegative(),
  owner_home: z.string(),
  version: z.string(),
  node: z.string(),
  package_root: z.string(),
  helper_socket: z.string(),
  installed_at: z.string(),
});
export type InstallRecord = z.infer<typeof installRecordSchema>;

/** The record in `configDir`, undefined when there is none (not installed); a broken one is an error. */
export function readInstallRecord(configDir: string): InstallRecord | undefined {
  const path = join(configDir, INSTALL_RECORD);
  let text: string;
  try {
    // Read at most one byte past the cap: enough to tell an oversized file without reading it whole.
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(RECORD_MAX_BYTES + 1);
      text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw operationFailed(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (text.length > RECORD_MAX_BYTES)
    throw operationFailed(`${path} is larger than ${RECORD_MAX_BYTES} bytes`);
  try {
    return installRecordSchema.parse(parseToml(text));
  } catch (err) {
    throw operationFailed(`${path} is not a banger install record: ${(err as Error).message.slice(0, 300)}`, {
      cause: err,
      hint: 'it is written by banger system install; reinstall to rewrite it',
    });
  }
}
