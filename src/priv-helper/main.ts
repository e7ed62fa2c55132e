/**
 * `bangerd-root`: the root helper. It does only the privileged host work of PrivOps, for one owner uid,
 * and nothing that parses an image, a guest or a registry: it imports none of the daemon, the store, the
 * OCI client or the rootfs builder (test/unit/priv-helper-imports.test.ts walks this file's import graph).
 */
import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { bangerVersion } from '../config/version.js';
import { createInProcessPrivOps } from '../host/priv/in-process.js';
import { listLoops } from '../host/priv/loop.js';
import { PRIV_HELPER_DEFAULT_SOCKET } from '../host/priv/protocol.js';
import { createRunner } from '../host/runner.js';
import { lookupUser } from '../host/users.js';
import { BangerError, badRequest, toBangerError } from '../model/errors.js';
import { startPrivHelperServer } from './server.js';

const DEFAULT_ID_FILE = '/var/lib/banger-root/instance-id';

const log = (line: string) => process.stderr.write(`bangerd-root: ${line}\n`);

const program = new Command('bangerd-root')
  .description(
    "banger's root helper: serves the privileged operations (bridge, taps, NAT, loop, device-mapper, sysctl, resolver routing, VMM signals) to the owner's bangerd over a unix socket",
  )
  .version(bangerVersion(), '--version', 'print the version')
  .requiredOption('--owner <user>', 'the only non-root user served (name or uid)')
  .option(
    '--socket <path>',
    'the socket to serve on (its directory is made root-owned 0711)',
    PRIV_HELPER_DEFAULT_SOCKET,
  )
  .option(
    '--state-dir <dir>',
    "the owner's banger state dir: the only tree a request's path may name",
    '/var/lib/banger',
  )
  .option('--id-file <path>', "this helper's instance id (the mark on the links it makes)", DEFAULT_ID_FILE)
  .addHelpText(
    'after',
    '\nExample:\n  bangerd-root --owner alice --state-dir /var/lib/banger\n\nIt must run as root; every request is logged as one line on stderr.',
  )
  .action(async (opts) => {
    if (process.geteuid?.() !== 0) {
      throw new BangerError('unauthorized', 'bangerd-root must run as root', {
        hint: 'start it through systemd (banger system install) or with sudo',
      });
    }
    for (const [flag, path] of [
      ['--socket', opts.socket],
      ['--state-dir', opts.stateDir],
      ['--id-file', opts.idFile],
    ] as const) {
      if (!isAbsolute(path))
        throw badRequest(`${flag} must be an absolute path, not ${JSON.stringify(path)}`);
    }
    const owner = lookupUser(opts.owner);
    if (owner.uid === 0)
      throw badRequest('--owner must not be root: the split exists to keep the daemon unprivileged');
    mkdirSync(dirname(opts.idFile), { recursive: true, mode: 0o700 });
    const runner = createRunner();
    const ops = createInProcessPrivOps({
      runner,
      stateDir: opts.stateDir,
      instanceIdFile: opts.idFile,
      signalUid: owner.uid,
    });
    const server = await startPrivHelperServer({
      socketPath: opts.socket,
      ownerUid: owner.uid,
      stateDir: opts.stateDir,
      ops,
      listLoops: () => listLoops(runner),
      version: bangerVersion(),
      log,
    });
    log(`serving ${owner.name} (uid ${owner.uid}), state dir ${opts.stateDir}, version ${bangerVersion()}`);
    await new Promise<void>((resolve) => {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve());
    });
    log('stopping');
    await server.close();
    process.exit(0);
  });

program.parseAsync().catch((err: unknown) => {
  const error = toBangerError(err);
  process.stderr.write(`bangerd-root: ${error.message}\n`);
  if (error instanceof BangerError && error.hint) process.stderr.write(`  hint: ${error.hint}\n`);
  process.exitCode = 1;
});
