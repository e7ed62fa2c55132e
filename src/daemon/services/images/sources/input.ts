import { close, constants, createReadStream, fstat, open, type Stats } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { BangerError, badRequest } from '../../../../model/errors.js';

/**
 * How long the CLI's stdin stream may stay silent before its first byte (or its end). The CLI opens its end
 * at once and `docker export` starts within seconds; a stream nobody writes to fails instead of pending.
 */
export const STDIN_READY_TIMEOUT_MS = 60_000;

export interface InputOptions {
  /** The path is the FIFO the CLI made for its own stdin (`-`): the one non-regular input accepted. */
  stdin: boolean;
  /** How messages name the input (`stdin` for the CLI's stream). */
  name?: string | undefined;
  /** How to feed this input through stdin instead, for the refusal of anything that is not a file. */
  pipeHint: string;
  readyTimeoutMs?: number;
  signal?: AbortSignal | undefined;
}

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/** Refuses what only the CLI's own stdin stream may be; the same check before and after the open. */
export function checkInputKind(file: string, st: Stats, o: Pick<InputOptions, 'stdin' | 'pipeHint'>): void {
  if (st.isFile() || (o.stdin && st.isFIFO())) return;
  const kind = kindOf(st);
  throw badRequest(`${file} is ${kind}; only a regular file is read as a tarball`, { hint: o.pipeHint });
}

/**
 * Opens a tarball the caller named without ever parking a thread of the daemon's pool: a FIFO without a
 * writer blocks open(2) for good, and four such opens used to wedge every file operation of the daemon.
 * O_NONBLOCK makes the open return at once (it means nothing for the reads of a regular file); the kind is
 * checked again on the descriptor, so a path swapped after the first check gains nothing. The CLI's FIFO
 * is read through the event loop (epoll, not the pool) and must deliver its first byte in bounded time.
 */
export async function openInput(
  file: string,
  o: InputOptions,
): Promise<{ stream: Readable; size: number | undefined }> {
  let fd: number;
  try {
    fd = await openFd(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw badRequest(`cannot read tarball ${file}: ${(err as Error).message}`, { cause: err });
  }
  let st: Stats;
  try {
    st = await fstatFd(fd);
    checkInputKind(file, st, o);
  } catch (err) {
    await closeFd(fd).catch(() => undefined);
    throw err;
  }
  if (st.isFile()) return { stream: createReadStream('', { fd, highWaterMark: 1024 * 1024 }), size: st.size };
  const pipe = new Socket({ fd, readable: true, writable: false });
  await firstByte(pipe, o.name ?? file, o);
  return { stream: pipe, size: undefined };
}

/** Resolves once the stream has data or has ended; a stream still silent after the timeout is destroyed. */
function firstByte(pipe: Socket, name: string, o: InputOptions): Promise<void> {
  const timeoutMs = o.readyTimeoutMs ?? STDIN_READY_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      pipe.off('readable', onReadable);
      pipe.off('error', done);
      o.signal?.removeEventListener('abort', onAbort);
      if (!err) return resolve();
      pipe.destroy();
      reject(err);
    };
    const onReadable = () => done();
    const onAbort = () => done(new BangerError('cancelled', `reading ${name} was cancelled`));
    const timer = setTimeout(
      () =>
        done(
          badRequest(`nothing arrived on ${name} within ${timeoutMs / 1000} s`, {
            hint: 'the stream must start within that time: pipe a file or a running command into banger',
          }),
        ),
      timeoutMs,
    );
    pipe.once('readable', onReadable);
    pipe.once('error', done);
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
