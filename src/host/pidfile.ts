import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { badRequest } from '../model/errors.js';

/**
 * The pidfile a long-lived process writes for itself before it becomes the real program: a fixed shell
 * script (no data in it: the path and argv arrive as positional parameters) writes `<pid> <start time>`,
 * then execs the argv in the same process, so the pid it wrote is the program's for its whole life. The
 * daemon can die at any instant after the fork and the file is still written; only a process killed
 * before its first two reads and one write leaves no pidfile, and such a process never ran the program.
 * comm of the shell is `sh` (no spaces), so field 22 of its stat is the 22nd word.
 */
const WRAPPER =
  'read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ t _ </proc/$$/stat && echo "$$ $t" >"$0" && exec "$@"';

/** argv that runs `argv` after writing its pidfile at `pidFile` (see WRAPPER). */
export function withPidFile(pidFile: string, argv: readonly string[]): string[] {
  return ['/bin/sh', '-c', WRAPPER, pidFile, ...argv];
}

/** `<pid> <start time>\n` is at most 2 x 20 digits; a bigger file was not written by the wrapper. */
const PIDFILE_MAX_BYTES = 64;

/**
 * The pid and start time a wrapper wrote, or undefined when there is no pidfile or it is still empty (the
 * process never got that far). Never follows a symlink, reads at most PIDFILE_MAX_BYTES, and refuses
 * content that is not two numbers.
 */
export async function readPidFile(path: string): Promise<{ pid: number; startTime: number } | undefined> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw badRequest(`cannot read pidfile ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (!(await fh.stat()).isFile()) throw badRequest(`pidfile ${path} is not a regular file`);
    const buf = Buffer.alloc(PIDFILE_MAX_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    if (text === '') return undefined;
    const m = bytesRead <= PIDFILE_MAX_BYTES ? /^(\d{1,10}) (\d{1,20})\n$/.exec(text) : null;
    if (!m) throw badRequest(`pidfile ${path} does not hold '<pid> <start time>'`);
    return { pid: Number(m[1]), startTime: Number(m[2]) };
  } finally {
    await fh.close();
  }
}
