import { Command } from '@commander-js/extra-typings';
import { bangerVersion, currentLayout, ensureLayoutDirs, loadConfig } from '../config/index.js';
import { BangerError, toBangerError } from '../model/errors.js';
import { checkMigrations } from './check-migrations.js';
import { startDaemon } from './daemon.js';
import { createDaemonLogger } from './logger.js';
import { checkPosture } from './posture.js';

// BANGER_FAKE_VERSION lets the tests run a daemon that claims another version (version-mismatch restart).
const version = process.env.BANGER_FAKE_VERSION || bangerVersion();

const program = new Command('bangerd')
  .description('the banger daemon: owns the store and the VMs; the banger CLI starts it on first use')
  .version(version, '--version', 'print the version')
  .option(
    '--check-migrations',
    'exit 0 if the store is compatible, 1 if migrations are needed, 2 if incompatible',
  )
  .option('--system', 'use the system layout (/etc/banger, /var/lib/banger, /run/banger)')
  .action(async (opts) => {
    const env = opts.system ? { ...process.env, BANGER_SYSTEM: '1' } : process.env;
    const layout = currentLayout(env);
    if (opts.checkMigrations) {
      const { exitCode, message } = checkMigrations(layout.dbPath);
      process.stdout.write(`${message}\n`);
      process.exitCode = exitCode;
      return;
    }
    const config = await loadConfig(layout.configFile, env);
    const posture = checkPosture({ config, euid: process.geteuid?.() ?? 0, system: opts.system === true });
    ensureLayoutDirs(layout);
    const log = createDaemonLogger(layout.logPath, config.log_level);
    const recipeCacheDir = process.env.BANGER_RECIPE_CACHE || undefined;
    const daemon = await startDaemon({ config, layout, log, version, recipeCacheDir, posture });
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => void daemon.stop(signal));
    }
    await daemon.stopped;
    // Everything the daemon opened is closed by now. `daemon stop` reports a stop only once this process is
    // gone, so a handle still open (a timer, a socket) must not keep it alive: name it, then exit.
    const left = process.getActiveResourcesInfo();
    if (left.length > 0) log.warn({ left }, 'handles still open after the stop; exiting anyway');
    process.exit();
  });

program.parseAsync().catch((err: unknown) => {
  const error = toBangerError(err);
  process.stderr.write(`bangerd: ${error.message}\n`);
  if (error instanceof BangerError && error.hint) process.stderr.write(`  hint: ${error.hint}\n`);
  process.exitCode = error.code === 'already_exists' ? 3 : 1;
});
