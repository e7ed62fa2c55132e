import type { Readable } from 'node:stream';
import type { Runner } from '../../../host/index.js';
import { operationFailed } from '../../../model/errors.js';

/** A tar stream of listed entries and how its writer ended. */
export interface HostArchive {
  stream: Readable;
  /** Resolves once tar exited; rejects with its stderr when it failed. */
  done: Promise<void>;
  kill(): void;
}

/**
 * GNU tar over exactly the entries given (relative to root, no recursion: directories are listed
 * themselves), owned by root in the archive, links stored as links (tar never follows one without -h).
 * The list goes in on tar's stdin, NUL-separated and verbatim, so no name is read as an option.
 */
export function hostArchive(runner: Runner, root: string, entries: readonly string[]): HostArchive {
  const tar = runner.spawn(
    [
      'tar',
      '-c',
      '-f',
      '-',
      '-C',
      root,
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--no-recursion',
      '--null',
      '--verbatim-files-from',
      '-T',
      '-',
    ],
    { pipe: true },
  );
  const errors: Buffer[] = [];
  tar.stderr?.on('data', (d: Buffer) => {
    if (errors.length < 64) errors.push(d);
  });
  const done = new Promise<void>((resolve, reject) => {
    tar.once('error', reject);
    tar.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          operationFailed(
            `archiving ${root} failed (tar ${signal ?? `exit ${code}`}): ${Buffer.concat(errors).toString().trim()}`,
          ),
        );
    });
  });
  done.catch(() => {});
  tar.stdin?.on('error', () => {}); // tar died early: its exit says why
  tar.stdin?.end(entries.length ? `${entries.join('\0')}\0` : '');
  return { stream: tar.stdout as Readable, done, kill: () => tar.kill('SIGKILL') };
}
