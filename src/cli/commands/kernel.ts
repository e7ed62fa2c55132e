import { resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { badRequest } from '../../model/errors.js';
import { formatSize } from '../../model/sizes.js';
import type { Result } from '../../rpc/index.js';
import { callWithProgress } from '../call.js';
import { type CliContext, examples } from '../context.js';
import { renderJson, renderTable } from '../render/table.js';

type KernelInfo = Result<'kernel.show'>['kernel'];

function renderKernel(k: KernelInfo): string {
  const lines = [
    `name:     ${k.name}`,
    `version:  ${k.version} (${k.distro}, ${k.arch})`,
    `source:   ${k.source}`,
    `imported: ${k.importedAt}`,
    `dir:      ${k.dir} (${formatSize(k.sizeBytes)})`,
    `kernel:   ${k.kernelPath}`,
  ];
  if (k.vmlinuxPath) lines.push(`vmlinux:  ${k.vmlinuxPath}`);
  if (k.initrdPath) lines.push(`initrd:   ${k.initrdPath}`);
  if (k.modulesDir) lines.push(`modules:  ${k.modulesDir}`);
  lines.push('files:');
  for (const [file, f] of Object.entries(k.files)) {
    lines.push(`  ${file.padEnd(11)} ${formatSize(f.size).padStart(9)}  sha256:${f.sha256}`);
  }
  lines.push('capabilities:');
  for (const [cap, value] of Object.entries(k.capabilities)) lines.push(`  ${cap.padEnd(26)} ${value}`);
  return `${lines.join('\n')}\n`;
}

/** `banger kernel list|show|pull|rm|import`. */
export function kernelCommands(ctx: CliContext) {
  const kernel = new Command('kernel').description('manage the kernels VMs boot (catalog, pull, import)');

  kernel
    .command('list')
    .alias('ls')
    .description('list local kernels; --available adds the catalog with each entry pulled or not')
    .option('--available', 'include catalog entries')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger kernel list', 'banger kernel list --available'))
    .action(async (opts) => {
      const r = await (await ctx.client()).call('kernel.list', { available: Boolean(opts.available) });
      if (opts.json) {
        ctx.out.write(renderJson(r));
        return;
      }
      if (opts.available && r.available) {
        const rows = r.available.map((a) => [
          a.name,
          a.state,
          a.kind,
          a.sizeBytes === undefined ? '-' : formatSize(a.sizeBytes),
          a.description ?? '',
        ]);
        ctx.out.write(renderTable(['NAME', 'STATE', 'KIND', 'SIZE', 'DESCRIPTION'], rows));
      } else {
        const rows = r.kernels.map((k) => [k.name, k.version, k.distro, formatSize(k.sizeBytes), k.source]);
        ctx.out.write(renderTable(['NAME', 'VERSION', 'DISTRO', 'SIZE', 'SOURCE'], rows));
      }
      for (const b of r.broken) ctx.err.write(`banger: kernel ${b.name} is broken: ${b.reason}\n`);
    });

  kernel
    .command('show')
    .description('show a local kernel: files, checksums, capabilities')
    .argument('<kernel>', 'kernel name')
    .option('--json', 'print JSON')
    .action(async (name, opts) => {
      const { kernel: k } = await (await ctx.client()).call('kernel.show', { name });
      ctx.out.write(opts.json ? renderJson(k) : renderKernel(k));
    });

  kernel
    .command('pull')
    .description('fetch a catalog kernel (Debian packages are verified by apt) and build its initramfs')
    .argument('<kernel>', 'catalog name (see: banger kernel list --available)')
    .option('--force', 'replace the local copy')
    .addHelpText('after', examples('banger kernel pull debian-cloud-amd64'))
    .action(async (name, opts) => {
      const { kernel: k } = await callWithProgress(ctx, 'kernel.pull', { name, force: Boolean(opts.force) });
      ctx.out.write(`pulled ${k.name}: ${k.version} (${formatSize(k.sizeBytes)})\n`);
    });

  kernel
    .command('rm')
    .alias('delete')
    .description('remove a local kernel')
    .argument('<kernel>', 'kernel name')
    .action(async (name) => {
      await (await ctx.client()).call('kernel.delete', { name });
      ctx.out.write(`removed ${name}\n`);
    });

  kernel
    .command('import')
    .description('import a kernel from a directory or a Debian linux-image package')
    .argument('<name>', 'name for the imported kernel')
    .addOption(
      new Option('--from <dir>', 'directory with vmlinuz|vmlinux [initrd.img] [modules/] [config]').conflicts(
        'deb',
      ),
    )
    .addOption(new Option('--deb <file>', 'a linux-image-*.deb').conflicts('from'))
    .option('--force', 'replace a kernel of that name')
    .addHelpText(
      'after',
      examples(
        'banger kernel import mine --from ./build',
        'banger kernel import cloud --deb linux-image-6.1.0-28-cloud-amd64.deb',
      ),
    )
    .action(async (name, opts) => {
      if (!opts.from && !opts.deb) throw badRequest('give --from <dir> or --deb <file>');
      const { kernel: k } = await callWithProgress(ctx, 'kernel.import', {
        name,
        from: opts.from ? resolve(opts.from) : undefined,
        deb: opts.deb ? resolve(opts.deb) : undefined,
        force: Boolean(opts.force),
      });
      ctx.out.write(`imported ${k.name}: ${k.version} (${formatSize(k.sizeBytes)})\n`);
    });

  return kernel;
}
