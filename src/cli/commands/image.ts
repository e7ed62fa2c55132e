import { Command } from '@commander-js/extra-typings';
import { formatSize } from '../../model/sizes.js';
import { type CliContext, examples } from '../context.js';
import { ago, renderJson, renderTable } from '../render/table.js';

/** `banger image …`. Pull/import land with the image issues; listing works on the store today. */
export function imageCommands(ctx: CliContext) {
  const image = new Command('image').description('pull, import and manage VM images');

  image
    .command('list')
    .alias('ls')
    .description('list images')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('banger image list', 'banger image list --json'))
    .action(async (opts) => {
      const { images } = await (await ctx.client()).call('image.list', {});
      if (opts.json) {
        ctx.out.write(renderJson(images));
        return;
      }
      const rows = images.map((i) => [i.name, i.source.kind, formatSize(i.sizeBytes), ago(i.createdAt)]);
      ctx.out.write(renderTable(['NAME', 'SOURCE', 'SIZE', 'CREATED'], rows));
    });

  return image;
}
