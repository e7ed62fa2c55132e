import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, rm, writeFile } from 'node:fs/promises';
import { operationFailed } from '../../model/errors.js';
import { validateInstanceId } from './validate.js';

/** The id file holds 32 hex digits and a newline; anything longer is not ours to trust. */
const MAX_ID_FILE_BYTES = 64;

/**
 * This instance's id (the suffix of its link mark), made once at random and kept 0600 in the state dir.
 * Concurrent first calls agree: the file is published with link(2), which fails when another caller won,
 * and then the winner's id is read. The read follows no symlink, opens no FIFO and is size-capped.
 */
export async function loadInstanceId(path: string): Promise<string> {
  const existing = await readId(path);
  if (existing) return existing;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600, flush: true });
    await link(tmp, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(tmp, { force: true });
  }
  const id = await readId(path);
  if (!id) throw operationFailed(`could not create banger's instance id at ${path}`);
  return id;
}

async function readId(path: string): Promise<string | undefined> {
  try {
    // O_NONBLOCK: a FIFO planted under the name must not hang the open.
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await handle.stat()).isFile()) throw new Error('not a regular file');
      const buf = Buffer.alloc(MAX_ID_FILE_BYTES + 1);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_ID_FILE_BYTES) throw new Error(`larger than ${MAX_ID_FILE_BYTES} bytes`);
      return validateInstanceId(buf.subarray(0, bytesRead).toString('utf8').trim());
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw operationFailed(`banger's instance id ${path} is unusable: ${(err as Error).message}`, {
      cause: err,
      hint: `remove ${path}; banger then makes a new id, and links made under the old one are left alone as foreign`,
    });
  }
}
