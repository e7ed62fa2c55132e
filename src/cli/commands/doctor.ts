import { Command } from '@commander-js/extra-typings';
import { type CliContext, examples } from '../context.js';
import type { CheckStatus } from '../doctor/index.js';
import { colorsFor } from '../render/color.js';

/** `banger doctor`: PASS/WARN/FAIL rows with a fix hint each; exit 1 when anything FAILs. */
export function doctorCommand(ctx: CliContext) {
  return new Command('doctor')
    .description('check that this host can run banger, and say how to fix what it cannot')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples('banger doctor', 'banger doctor --json | jq \'.[] | select(.status != "PASS")\''),
    )
    .action(async (opts) => {
      // Loaded here, not at start-up: the checks import the VMM and kernel layers (~150 ms).
      const { aptLine, runDoctor } = await import('../doctor/index.js');
      const results = await runDoctor({ layout: ctx.layout, runner: ctx.runner, arch: process.arch });
      if (opts.json) {
        ctx.out.write(`${JSON.stringify(results, null, 2)}\n`);
      } else {
        const c = colorsFor(ctx.out);
        const paint: Record<CheckStatus, (s: string) => string> = {
          PASS: c.green,
          WARN: c.yellow,
          FAIL: c.red,
        };
        for (const r of results) {
          ctx.out.write(`${paint[r.status](r.status)}\t${r.name}\n`);
          for (const d of r.details) ctx.out.write(`  - ${d}\n`);
          if (r.hint && r.status !== 'PASS') ctx.out.write(`  ${c.dim('fix:')} ${r.hint}\n`);
        }
        const apt = aptLine(results);
        if (apt) ctx.out.write(`\nmissing host packages, all in one line: ${apt}\n`);
      }
      if (results.some((r) => r.status === 'FAIL')) process.exitCode = 1;
    });
}
