import { Command } from '@commander-js/extra-typings';
import { currentLayout, packageRoot } from '../../config/paths.js';
import { lookupUser } from '../../host/users.js';
import { BangerError } from '../../model/errors.js';
import { type InstallPlan, installPlan } from '../../system/install-plan.js';
import { systemRun } from '../../system/run.js';
import { type CliContext, examples } from '../context.js';

/**
 * `banger system install --owner USER --dry-run`: what a system install (bangerd as the owner, bangerd-root
 * as root) would write and run; only the dry run is built so far, without --dry-run it is refused.
 * `banger system run --owner USER`: the same two processes in the foreground.
 */
export function systemCommands(ctx: CliContext) {
  const system = new Command('system').description(
    'the system install: bangerd as its owner, bangerd-root as root (see docs/privileges.md)',
  );
  system
    .command('install')
    .description('print the units, directories and commands of a system install for USER (--dry-run)')
    .requiredOption('--owner <user>', 'the user the daemon runs as and the only one the root helper serves')
    .option('--dry-run', 'print every file, directory and command; write and run nothing')
    .option('--json', 'print the plan as JSON (with --dry-run)')
    .addHelpText(
      'after',
      examples(
        'banger system install --owner alice --dry-run',
        'banger system install --owner alice --dry-run --json',
      ),
    )
    .action((opts) => {
      if (!opts.dryRun) {
        throw new BangerError('bad_request', 'system install is not built yet: only --dry-run is', {
          hint: 'run with --dry-run to see what it will write and run (docs/privileges.md says what is built)',
        });
      }
      const plan = installPlan({
        owner: lookupUser(opts.owner),
        node: process.execPath,
        packageRoot: packageRoot(),
        version: ctx.version,
        now: new Date(),
      });
      ctx.out.write(opts.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
    });
  system
    .command('run')
    .description(
      'run bangerd-root as root and bangerd as USER in the foreground, without systemd; Ctrl-C stops both',
    )
    .requiredOption('--owner <user>', 'the user the daemon runs as and the only one the root helper serves')
    .addHelpText(
      'after',
      examples(
        'sudo banger system run --owner alice',
        'sudo BANGER_HOME=/srv/banger-ci banger system run --owner ci   # a whole isolated instance',
      ),
    )
    .action(async (opts) => {
      const env = process.env.BANGER_HOME ? process.env : { ...process.env, BANGER_SYSTEM: '1' };
      process.exitCode = await systemRun({
        owner: lookupUser(opts.owner),
        layout: currentLayout(env),
        env,
        node: process.execPath,
        packageRoot: packageRoot(),
        say: (line) => ctx.err.write(`banger system run: ${line}\n`),
      });
    });
  return system;
}

function renderPlan(plan: InstallPlan): string {
  const lines = [
    `system install for ${plan.owner.name} (uid ${plan.owner.uid}): dry run, nothing is written or run`,
    '',
    'directories:',
    ...plan.dirs.map((d) => `  ${d.path.padEnd(22)} ${`${d.owner}:${d.group}`.padEnd(16)} ${d.mode}`),
    '',
    'files:',
  ];
  for (const f of plan.files) {
    const keep = f.keepIfPresent ? ', kept if present' : '';
    lines.push(`--- ${f.path} (${f.owner}:${f.group} ${f.mode}${keep})`, f.content.trimEnd(), '');
  }
  lines.push('commands:', ...plan.commands.map((c) => `  ${c.join(' ')}`), '');
  return lines.join('\n');
}
