import { Command } from '@commander-js/extra-typings';
import { formatSize } from '../../model/sizes.js';
import type { Result } from '../../rpc/index.js';
import { type CliContext, examples } from '../context.js';
import { ago, renderJson, renderTable } from '../render/table.js';

type SnapshotInfo = Result<'snapshot.show'>['snapshot'];

function renderSnapshot(s: SnapshotInfo): string {
  const lines = [
    `name:    ${s.name}`,
    `id:      ${s.id}`,
    `from:    VM ${s.source.vmName} (${s.source.vmId})`,
    `vmm:     ${s.vmm.kind} ${s.vmm.version}`,
    `spec:    ${s.spec.vcpu} vCPU, ${s.spec.memoryMib} MiB`,
    `created: ${s.createdAt}`,
    `dir:     ${s.dir}`,
    `size:    ${formatSize(s.sizeBytes)}`,
    'files:',
    ...s.files.map(
      (f) =>
        `  ${f.name.padEnd(12)} ${f.role.padEnd(9)} ${formatSize(f.sizeBytes).padStart(9)}  sha256:${f.sha256}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/** `banger snapshot list|show|rm` (made by `banger vm snapshot VM NAME`). */
export function snapshotCommands(ctx: CliContext) {
  const snapshot = new Command('snapshot').description(
    'manage saved VMs (memory, device state and disks); make one with banger vm snapshot VM NAME',
  );

  snapshot
    .command('list')
    .alias('ls')
    .description('list snapshots with their source VM, VMM and size')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger snapshot list', 'banger snapshot list --json'))
    .action(async (opts) => {
      const { snapshots } = await (await ctx.client()).call('snapshot.list', {});
      if (opts.json) {
        ctx.out.write(renderJson(snapshots));
        return;
      }
      ctx.out.write(
        renderTable(
          ['NAME', 'FROM VM', 'VMM', 'SIZE', 'CREATED'],
          snapshots.map((s) => [
            s.name,
            s.source.vmName,
            `${s.vmm.kind} ${s.vmm.version}`,
            formatSize(s.sizeBytes),
            ago(s.createdAt),
          ]),
        ),
      );
    });

  snapshot
    .command('show')
    .description(
      "show a snapshot's files, sizes and digests; --verify reads every file and checks its sha256",
    )
    .argument('<snapshot>', 'snapshot name or id')
    .option('--json', 'print JSON')
    .option('--verify', 'check every file against its recorded sha256 (fails naming a changed file)')
    .addHelpText('after', examples('banger snapshot show base', 'banger snapshot show base --verify'))
    .action(async (ref, opts) => {
      const { snapshot: s } = await (await ctx.client()).call('snapshot.show', {
        ref,
        verify: Boolean(opts.verify),
      });
      ctx.out.write(opts.json ? renderJson(s) : renderSnapshot(s));
    });

  snapshot
    .command('rm')
    .alias('delete')
    .description('delete snapshots and their files')
    .argument('<snapshot...>', 'snapshot names or ids')
    .addHelpText('after', examples('banger snapshot rm base'))
    .action(async (refs) => {
      const c = await ctx.client();
      let failed = 0;
      for (const ref of refs) {
        try {
          ctx.out.write(`${(await c.call('snapshot.rm', { ref })).snapshot.name}\n`);
        } catch (err) {
          failed++;
          ctx.err.write(`banger: rm ${ref}: ${(err as Error).message}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    });

  return snapshot;
}
