import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { badRequest } from '../../model/errors.js';
import { type CliContext, examples } from '../context.js';

/** write-file-atomic, loaded when a config is written: it pulls crypto and worker_threads into every call. */
const writeAtomic = async (file: string, data: string, mode: number): Promise<void> => {
  const { default: writeFileAtomic } = await import('write-file-atomic');
  await writeFileAtomic(file, data, { mode });
};

/** The one line `--install` adds to ~/.ssh/config (quoted when the path needs it). */
export function includeLine(path: string): string {
  return `Include ${/\s/.test(path) ? `"${path}"` : path}`;
}

/**
 * Adds the Include line at the top of the user's ssh config (an Include after a `Host` line would only
 * apply inside that block). Idempotent; creates ~/.ssh (0700) and the file (0600) when missing and keeps
 * an existing file's mode. Returns false when the line was already there.
 */
export async function installInclude(userConfig: string, line: string): Promise<boolean> {
  const exists = existsSync(userConfig);
  const text = exists ? await readFile(userConfig, 'utf8') : '';
  if (text.split('\n').some((l) => l.trim() === line)) return false;
  const mode = exists ? (await stat(userConfig)).mode & 0o777 : 0o600;
  await mkdir(join(userConfig, '..'), { recursive: true, mode: 0o700 });
  await writeAtomic(userConfig, `${line}\n${text}`, mode);
  return true;
}

/** Removes exactly the Include line (every copy of it), nothing else. Returns false when it was absent. */
export async function uninstallInclude(userConfig: string, line: string): Promise<boolean> {
  if (!existsSync(userConfig)) return false;
  const text = await readFile(userConfig, 'utf8');
  const lines = text.split('\n');
  const kept = lines.filter((l) => l.trim() !== line);
  if (kept.length === lines.length) return false;
  const mode = (await stat(userConfig)).mode & 0o777;
  await writeAtomic(userConfig, kept.join('\n'), mode);
  return true;
}

/** `banger ssh-config [--install|--uninstall]`: `ssh NAME.vm` through banger's key, opt-in. */
export function sshConfigCommand(ctx: CliContext) {
  return new Command('ssh-config')
    .description("print banger's ssh config (Host NAME.vm); --install Includes it from ~/.ssh/config")
    .option('--install', "add one `Include <banger's ssh_config>` line to ~/.ssh/config (idempotent)")
    .option('--uninstall', 'remove that line from ~/.ssh/config')
    .addHelpText(
      'after',
      examples(
        'banger ssh-config',
        'banger ssh-config --install && ssh dev.vm',
        'banger ssh-config --uninstall',
      ),
    )
    .action(async (opts) => {
      if (opts.install && opts.uninstall) throw badRequest('--install and --uninstall exclude each other');
      const { path, text } = await (await ctx.client()).call('vm.sshConfig', {});
      const userConfig = join(homedir(), '.ssh', 'config');
      const line = includeLine(path);
      if (opts.install) {
        const added = await installInclude(userConfig, line);
        ctx.out.write(added ? `added to ${userConfig}: ${line}\n` : `already in ${userConfig}: ${line}\n`);
        return;
      }
      if (opts.uninstall) {
        const removed = await uninstallInclude(userConfig, line);
        ctx.out.write(removed ? `removed from ${userConfig}: ${line}\n` : `not in ${userConfig}: ${line}\n`);
        return;
      }
      ctx.out.write(text);
      ctx.err.write(
        `# this is ${path}; banger keeps it current as VMs start and are deleted\n` +
          `# to use it (ssh NAME.vm): banger ssh-config --install  (adds "${line}" to ${userConfig})\n`,
      );
    });
}
