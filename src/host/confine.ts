import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { badRequest } from '../model/errors.js';
import type { Runner, RunOptions, RunResult } from './runner.js';

/** nobody/nogroup: the identity a tool runs as when it must read or repair a filesystem someone else made. */
export const CONFINED_ID = 65534;
/** Where the confined tool finds the file: the descriptor we hand it, never a path it could be steered by. */
export const CONFINED_FILE = '/dev/fd/3';

export interface ConfinedOptions extends Omit<RunOptions, 'cwd' | 'passFds'> {
  /** Whether this process is root; read from the process when not given (tests set it). */
  asRoot?: boolean;
}

/**
 * Runs a tool (e2fsck, resize2fs, debugfs) on a file whose contents an image or a guest controls. A bug
 * in the tool that a crafted filesystem can reach must not act with root's power, so when we are root the
 * tool runs as uid/gid 65534 without groups and with no_new_privs, cwd `/`, and reaches the file only
 * through an inherited descriptor (`/dev/fd/3`): the reopen checks the file's owner, so the file is lent
 * to 65534 for the run and given back after, failure or not. Not root, the tool runs as it is: it has
 * only the user's own power. `argv` gets the name to give the tool for the file.
 */
export async function runConfined(
  runner: Runner,
  file: string,
  argv: (target: string) => string[],
  { asRoot = process.geteuid?.() === 0, ...options }: ConfinedOptions = {},
): Promise<RunResult> {
  if (!asRoot) return runner.run(argv(file), options);
  const fh = await open(file, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw badRequest(`${file} is not a regular file`);
    await fh.chown(CONFINED_ID, CONFINED_ID);
    try {
      const drop = [`--reuid=${CONFINED_ID}`, `--regid=${CONFINED_ID}`, '--clear-groups', '--no-new-privs'];
      return await runner.run(['setpriv', ...drop, '--', ...argv(CONFINED_FILE)], {
        ...options,
        cwd: '/',
        passFds: [fh.fd],
      });
    } finally {
      // Through the descriptor, not the path: the name may point elsewhere by now.
      await fh.chown(st.uid, st.gid);
      await fh.chmod(st.mode & 0o7777);
    }
  } finally {
    await fh.close();
  }
}
