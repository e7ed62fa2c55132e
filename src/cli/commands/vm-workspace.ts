import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { badRequest } from '../../model/errors.js';
import type { Result } from '../../rpc/index.js';
import { callWithProgress } from '../call.js';
import { type CliContext, examples } from '../context.js';

/** How a copy-in went, on stderr: where it landed, the commit export diffs against, what was left out. */
export function reportWorkspace(
  ctx: CliContext,
  w: Result<'workspace.prepare'> | NonNullable<Result<'vm.run'>['workspace']>,
) {
  const at = w.baseCommit ? ` at ${w.baseCommit.slice(0, 12)}` : '';
  const branch = w.branch ? ` on new branch ${w.branch}` : '';
  ctx.err.write(`workspace: ${w.guestDir}${branch}${at}\n`);
  for (const line of w.skipped) ctx.err.write(`note: not copied: ${line}\n`);
}

/**
 * Writes the patch where the user asked and nowhere else: stdout, or FILE through a temporary name beside
 * it that replaces FILE only once the whole patch is in (a failed export leaves FILE as it was).
 */
function patchSink(ctx: CliContext, file: string | undefined) {
  if (!file) return { write: (d: Buffer) => ctx.out.write(d), commit: () => {}, abort: () => {} };
  const target = resolve(file);
  const tmp = join(dirname(target), `.${basename(target)}.banger-${process.pid}`);
  const fd = openSync(tmp, 'wx', 0o644);
  let open = true;
  const close = () => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    write: (d: Buffer) => {
      let off = 0;
      while (off < d.length) off += writeSync(fd, d, off);
    },
    commit: () => {
      fsyncSync(fd);
      close();
      renameSync(tmp, target);
    },
    abort: () => {
      close();
      rmSync(tmp, { force: true });
    },
  };
}

/** `banger vm workspace …`: a host repository into a running VM, and its changes back as a patch. */
export function workspaceCommands(ctx: CliContext) {
  const ws = new Command('workspace').description(
    'copy a repository into a VM at /root/repo; export its changes',
  );

  ws.command('prepare')
    .description('copy a host directory into a running VM at /root/repo (a git repository as git sees it)')
    .argument('<vm>', 'VM (running)')
    .argument('<path>', 'host directory')
    .option('--branch <name>', 'create and check out this new branch in the guest')
    .option('--from <ref>', 'start the new branch from this commit (needs --branch)')
    .option('--force', 'replace an existing /root/repo')
    .addHelpText(
      'after',
      examples(
        'banger vm workspace prepare dev ./repo',
        'banger vm workspace prepare dev . --branch try-fix --from origin/main --force',
      ),
    )
    .action(async (ref, path, opts) => {
      if (opts.from !== undefined && opts.branch === undefined)
        throw badRequest('--from needs --branch: it says where the new branch starts');
      const r = await callWithProgress(ctx, 'workspace.prepare', {
        ref,
        path: resolve(path),
        branch: opts.branch,
        from: opts.from,
        force: Boolean(opts.force),
      });
      reportWorkspace(ctx, r);
      ctx.out.write(`${r.guestDir}\n`);
    });

  ws.command('export')
    .description("print the VM's changes in /root/repo as a git patch (apply with git apply)")
    .argument('<vm>', 'VM (running)')
    .option('--base-commit <ref>', 'diff against this commit (default: the one prepared)')
    .option('-o, --output <file>', 'write the patch to this file instead of stdout')
    .addHelpText(
      'after',
      examples(
        'banger vm workspace export dev > changes.patch && git apply changes.patch',
        'banger vm workspace export dev -o changes.patch --base-commit HEAD~1',
      ),
    )
    .action(async (ref, opts) => {
      const sink = patchSink(ctx, opts.output);
      try {
        await (await ctx.client()).call(
          'workspace.export',
          { ref, baseCommit: opts.baseCommit },
          {
            onOutput: (stream, data) => (stream === 'stdout' ? sink.write(data) : ctx.err.write(data)),
            // Why the export took the slower guest-side diff, when it did (the patch is the same).
            onProgress: (e) => {
              if (e.kind === 'log')
                ctx.err.write(`${e.level === 'warn' ? 'warning' : 'note'}: ${e.message}\n`);
            },
          },
        );
        sink.commit();
      } catch (err) {
        sink.abort();
        throw err;
      }
    });

  return ws;
}
