import { isAbsolute } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command } from '@commander-js/extra-typings';
import { currentLayout, packageRoot } from '../../config/paths.js';
import { lookupUser } from '../../host/users.js';
import { badRequest } from '../../model/errors.js';
import { applyInstallPlan } from '../../system/install-apply.js';
import { installPlan } from '../../system/install-plan.js';
import { systemRun } from '../../system/run.js';
import { noSystemdError, requireRoot, systemdBooted } from '../../system/systemd.js';
import { type CliContext, examples } from '../context.js';
import { renderInstalled, renderPlan, renderStatus } from '../render/system.js';

/** `banger system status` exits with this when something is down or not installed (as `systemctl status`). */
export const STATUS_NOT_RUNNING = 3;

/**
 * `banger system install|status|restart|uninstall|run`: the system install (bangerd as its owner,
 * bangerd-root as root) under systemd, or both in the foreground without it (`run`).
 */
export function systemCommands(ctx: CliContext) {
  const system = new Command('system').description(
    'the system install: bangerd as its owner, bangerd-root as root (see docs/privileges.md)',
  );
  const run = (argv: string[]) => ctx.runner.run(argv).then(() => undefined);
  const say = (verb: string) => (line: string) => ctx.err.write(`banger system ${verb}: ${line}\n`);
  // The system layout, or a whole instance under BANGER_HOME (as `system run` uses).
  const env = () => (process.env.BANGER_HOME ? process.env : { ...process.env, BANGER_SYSTEM: '1' });

  system
    .command('install')
    .description('install and start the systemd units for USER: units, install record, config, directories')
    .requiredOption('--owner <user>', 'the user the daemon runs as and the only one the root helper serves')
    .option('--dry-run', 'print every file, directory and command; write and run nothing')
    .option(
      '--root <dir>',
      'write everything below DIR instead of / (as systemctl --root or DESTDIR, for packages and images); runs no systemctl command',
    )
    .option('--json', 'print the plan (with --dry-run) or what was done as JSON')
    .addHelpText(
      'after',
      examples(
        'sudo banger system install --owner alice',
        'banger system install --owner alice --dry-run',
        'sudo banger system install --owner alice --root /tmp/pkgroot   # a package tree; no systemctl',
      ),
    )
    .action(async (opts) => {
      const plan = installPlan({
        owner: lookupUser(opts.owner),
        node: process.execPath,
        packageRoot: packageRoot(),
        version: ctx.version,
        now: new Date(),
      });
      if (opts.dryRun) {
        ctx.out.write(opts.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
        return;
      }
      if (opts.root !== undefined && !isAbsolute(opts.root)) {
        throw badRequest(`--root must be an absolute path, not ${JSON.stringify(opts.root)}`);
      }
      if (opts.root === undefined && !systemdBooted()) throw noSystemdError('install');
      requireRoot('install');
      const done = await applyInstallPlan(plan, { root: opts.root, runCommand: run, say: say('install') });
      ctx.out.write(
        opts.json ? `${JSON.stringify(done, null, 2)}\n` : renderInstalled(plan, done, opts.root),
      );
    });

  system
    .command('status')
    .description("both units (under systemd), the helper's and the daemon's sockets and versions, the owner")
    .option('--json', 'print the status as JSON')
    .addHelpText(
      'after',
      `${examples('banger system status', 'banger system status --json | jq .healthy')}
Exit status: 0 when the helper and the daemon answer (and, under systemd, both units are active);
${STATUS_NOT_RUNNING} when something is down or nothing is installed; 1 on an error.
`,
    )
    .action(async (opts) => {
      // Loaded here: the install record's schema is zod, which no other CLI call may load at start-up.
      const { systemStatus } = await import('../../system/status.js');
      const status = await systemStatus(currentLayout(env()), env(), ctx.runner, ctx.version);
      ctx.out.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status));
      process.exitCode = status.healthy ? 0 : STATUS_NOT_RUNNING;
    });

  system
    .command('restart')
    .description('restart both units under systemd: the helper first, then the daemon')
    .addHelpText('after', examples('sudo banger system restart'))
    .action(async () => {
      if (!systemdBooted()) throw noSystemdError('restart');
      requireRoot('restart');
      for (const unit of ['bangerd-root.service', 'bangerd.service']) {
        await run(['systemctl', 'restart', unit]);
        say('restart')(`restarted ${unit}`);
      }
    });

  system
    .command('uninstall')
    .description(
      'stop and disable both units, remove them and the install record; --purge also deletes state',
    )
    .option('--purge', 'also delete the state, cache and config directories (lists them and asks first)')
    .option('--yes', 'do not ask before --purge deletes (needed when stdin is not a terminal)')
    .option('--root <dir>', 'uninstall from a tree made by install --root; runs no systemctl command')
    .addHelpText(
      'after',
      examples(
        'sudo banger system uninstall',
        'sudo banger system uninstall --purge',
        'sudo banger system uninstall --purge --yes   # in a script',
      ),
    )
    .action(async (opts) => {
      if (opts.root !== undefined && !isAbsolute(opts.root)) {
        throw badRequest(`--root must be an absolute path, not ${JSON.stringify(opts.root)}`);
      }
      if (opts.root === undefined && !systemdBooted()) throw noSystemdError('uninstall');
      requireRoot('uninstall');
      const { applyUninstall, uninstallPlan } = await import('../../system/uninstall.js'); // zod, as status
      const plan = uninstallPlan(opts.purge === true);
      if (plan.trees.length > 0) {
        const at = (p: string) => (opts.root ? `${opts.root}${p}` : p);
        ctx.err.write(
          `--purge deletes, with everything in them (VM disks, images, kernels, the store, keys, config):\n${plan.trees.map((t) => `  ${at(t)}\n`).join('')}`,
        );
        if (!opts.yes) await confirm();
      }
      await applyUninstall(plan, { root: opts.root, runCommand: run, say: say('uninstall') });
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
      process.exitCode = await systemRun({
        owner: lookupUser(opts.owner),
        layout: currentLayout(env()),
        env: env(),
        node: process.execPath,
        packageRoot: packageRoot(),
        say: say('run'),
      });
    });
  return system;
}

/** Asks on the terminal; without one, refuses (a script must say --yes). */
async function confirm(): Promise<void> {
  if (!process.stdin.isTTY) {
    throw badRequest('--purge deletes state and stdin is not a terminal to confirm it', {
      hint: 'add --yes to delete without asking',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question('Delete them? Type "yes" to go on: ');
  rl.close();
  if (answer.trim() !== 'yes') throw badRequest('uninstall cancelled: nothing was changed');
}
