import type { Command as CommanderCommand } from 'commander';
// Not the config barrel: it loads the TOML parser and the config schema, which a CLI call does not need.
import { currentLayout } from '../config/paths.js';
import { bangerVersion } from '../config/version.js';
import { createRunner } from '../host/runner.js';
// Not the rpc barrel: it carries the daemon's server side too.
import { createRpcClient, type RpcClient } from '../rpc/client.js';
import { optimisticDaemonClient } from '../rpc/daemon-client.js';
import { installCompletion } from './completion.js';
import type { CliContext } from './context.js';
import { buildProgram } from './program.js';
import { printError } from './render/errors.js';

// A closed pipe (`banger vm list | head`) is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

async function main(): Promise<void> {
  const layout = currentLayout();
  const version = bangerVersion();
  const runner = createRunner();
  let client: RpcClient | undefined;
  const ctx: CliContext = {
    layout,
    version,
    runner,
    async client() {
      client ??= optimisticDaemonClient({
        layout,
        version,
        runner,
        notice: (m) => process.stderr.write(`banger: ${m}\n`),
      });
      return client;
    },
    existingClient: () => createRpcClient(layout.socketPath, version),
    out: process.stdout,
    err: process.stderr,
  };
  const program = buildProgram(ctx);
  await installCompletion(program as unknown as CommanderCommand, ctx.existingClient(), process.argv);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  process.exitCode = printError(err);
});
