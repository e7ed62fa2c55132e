import { Command } from '@commander-js/extra-typings';
import type { CliContext } from '../context.js';

/** `banger version`: the CLI's version, and the daemon's when one answers. */
export function versionCommand(ctx: CliContext) {
  return new Command('version')
    .description("print banger's version and the running daemon's")
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const daemon = await ctx
        .existingClient()
        .call('ping', {}, { timeoutMs: 2000 })
        .then((p) => p.version)
        .catch(() => undefined);
      if (opts.json) {
        ctx.out.write(
          `${JSON.stringify({ banger: ctx.version, bangerd: daemon ?? null, node: process.version })}\n`,
        );
        return;
      }
      ctx.out.write(`banger ${ctx.version}\nbangerd ${daemon ?? '(not running)'}\nnode ${process.version}\n`);
    });
}
