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
 * and then the winner's id is read. The read follows no symlink and is size-capped.
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
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: a FIFO planted under the name must not hang the open.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw operationFailed(`cannot read banger's instance id ${path}: ${(err as Error).message}`, {
      cause: err,
      hint: 'it must be a regular file (symlinks are refused)',
    });
  }
  try {
    if (!(await handle.stat()).isFile()) {
      throw operationFailed(`banger's instance id ${path} is not a regular file`, {
        hint: `remove it; banger then makes a new id (links made under the old one are left alone as foreign)`,
      });
    }
    const buf = Buffer.alloc(MAX_ID_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    return validateInstanceId(text.trim(), path);
  } finally {
    await handle.close();
  }
}
