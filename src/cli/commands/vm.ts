import { Command } from '@commander-js/extra-typings';
import { type CliContext, examples } from '../context.js';
import { ago, renderJson, renderTable } from '../render/table.js';

/** `banger vm …`. The lifecycle verbs land with the VM issue; listing works on the store today. */
export function vmCommands(ctx: CliContext) {
  const vm = new Command('vm').description('create, run and manage microVMs');

  vm.command('list')
    .alias('ls')
    .description('list VMs in every state')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger vm list', "banger vm list --json | jq -r '.[].name'"))
    .action(async (opts) => {
      const { vms } = await (await ctx.client()).call('vm.list', {});
      if (opts.json) {
        ctx.out.write(renderJson(vms));
        return;
      }
      const rows = vms.map((v) => [
        v.id.slice(0, 8),
        v.name,
        v.state,
        v.runtime.guestIp ?? '-',
        ago(v.createdAt),
      ]);
      ctx.out.write(renderTable(['ID', 'NAME', 'STATE', 'IP', 'CREATED'], rows));
    });

  return vm;
}
