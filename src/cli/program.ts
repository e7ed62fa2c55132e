import { Command } from '@commander-js/extra-typings';
import type { Command as CommanderCommand } from 'commander';
import { daemonCommands } from './commands/daemon.js';
import { doctorCommand } from './commands/doctor.js';
import { imageCommands } from './commands/image.js';
import { kernelCommands } from './commands/kernel.js';
import { mcpCommands } from './commands/mcp.js';
import { snapshotCommands } from './commands/snapshot.js';
import { sshConfigCommand } from './commands/ssh-config.js';
import { systemCommands } from './commands/system.js';
import { versionCommand } from './commands/version.js';
import { vmCommands } from './commands/vm.js';
import { type CliContext, examples } from './context.js';

/** The command tree. Each group lives in its own file under commands/. */
export function buildProgram(ctx: CliContext) {
  const program = new Command('banger')
    .description('a Linux sandbox in a microVM, with one command')
    .version(ctx.version, '-V, --version', 'print the version')
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      examples('banger doctor', 'banger vm list --json', 'banger image list', 'banger daemon status'),
    );
  program.addCommand(vmCommands(ctx));
  program.addCommand(imageCommands(ctx));
  program.addCommand(kernelCommands(ctx));
  program.addCommand(mcpCommands(ctx));
  program.addCommand(snapshotCommands(ctx));
  program.addCommand(sshConfigCommand(ctx));
  program.addCommand(daemonCommands(ctx));
  program.addCommand(systemCommands(ctx));
  program.addCommand(doctorCommand(ctx));
  program.addCommand(versionCommand(ctx));
  applyOutput(program as unknown as CommanderCommand, ctx);
  return program;
}

/** Usage errors look like every other error (`banger: …`) and go to our streams, in every subcommand. */
function applyOutput(command: CommanderCommand, ctx: CliContext): void {
  command.configureOutput({
    writeOut: (s) => ctx.out.write(s),
    writeErr: (s) => ctx.err.write(s),
    outputError: (s, write) => write(`banger: ${s.replace(/^error: /, '')}`),
  });
  for (const sub of command.commands) applyOutput(sub, ctx);
}
