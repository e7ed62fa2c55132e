import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { Runner } from '../../../host/index.js';
import { EXPORT_MAX_BYTES, EXPORT_TIMEOUT_MS, exportFailure, exportPatch } from './export.js';
import { EXPORT_CHANGES_SCRIPT, GUEST_DIFF } from './export-guest.js';
import { fastImport, openPrivateRepo, writeDiff } from './export-host.js';
import { changeStream } from './export-stream.js';
import { collector, type GuestExec } from './guest.js';

export interface ExportOptions {
  baseCommit?: string | undefined;
  vmName: string;
  /** The host repository the workspace was copied from (the VM's workspace record), when known. */
  source?: string | undefined;
  /** Cap on what the guest sends (the change stream, or the patch of the guest-side diff). */
  maxBytes?: number;
  /** Why the export fell back to the guest-side diff, for the user. */
  notice?: (message: string) => void;
}

/** The guest's base commit is not among the host repository's objects: the guest has to diff. */
class BaseMissing extends Error {}

/**
 * The workspace's patch, made on the host where it can be: the guest lists what changed (stat data only)
 * and sends those files in a tar; the host applies them to the base, read from the repository the
 * workspace came from, in a private repository (export-host.ts) and diffs there at native speed. Without
 * a host repository, with a base it lacks, or when the guest says git would transform content on the way
 * in (autocrlf, attributes), the guest diffs itself as before (exportPatch), with a notice.
 */
export async function exportWorkspace(
  runner: Runner,
  exec: GuestExec,
  guestDir: string,
  out: Writable,
  opts: ExportOptions,
): Promise<{ bytes: number }> {
  const gitDir = opts.source ? join(opts.source, '.git') : undefined;
  const usable = gitDir && (await lstat(gitDir).catch(() => undefined))?.isDirectory();
  if (!usable) {
    if (opts.source)
      opts.notice?.(`${opts.source} is no longer a git repository: diffing in the guest (slower)`);
    return exportPatch(exec, guestDir, out, opts);
  }
  const repo = await openPrivateRepo(runner, gitDir);
  try {
    const fi = fastImport(runner, repo);
    let base = '';
    const changes = changeStream({
      ...fi,
      async base(oid) {
        if (!(await repo.has(oid))) throw new BaseMissing(oid);
        base = oid;
        await fi.base(oid);
      },
    });
    const err = collector();
    try {
      const r = await exec(
        { argv: ['/bin/sh', '-c', EXPORT_CHANGES_SCRIPT, 'sh', guestDir, opts.baseCommit ?? ''] },
        {
          stdout: changes.stream,
          stderr: err.sink,
          limit: {
            maxBytes: opts.maxBytes ?? EXPORT_MAX_BYTES,
            timeoutMs: EXPORT_TIMEOUT_MS,
            what: 'the workspace changes',
          },
        },
      );
      if (r.exitCode === GUEST_DIFF) {
        opts.notice?.(`${err.text()}: diffing in the guest (slower)`);
        return exportPatch(exec, guestDir, out, opts);
      }
      if (r.exitCode !== 0) throw exportFailure(r, guestDir, opts.vmName, err.text());
      try {
        await changes.done();
      } catch (e) {
        if (!(e instanceof BaseMissing)) throw e;
        opts.notice?.(`the base commit ${e.message} is not in ${opts.source}: diffing in the guest (slower)`);
        return exportPatch(exec, guestDir, out, opts);
      }
      const head = await fi.commit();
      return { bytes: await writeDiff(runner, repo, base, head, out) };
    } finally {
      changes.abort();
      fi.kill();
    }
  } finally {
    await repo.remove();
  }
}
