import { noParams } from '../../rpc/methods/define.js';
import { defineTool } from '../tool.js';
import { imageSummary } from './summaries.js';

export const imageListTool = () =>
  defineTool({
    name: 'image_list',
    title: 'List images',
    description:
      'Images ready to boot, and the catalog images that image_pull (or vm_create/vm_run) can fetch by name.',
    input: noParams,
    readOnly: true,
    async run(_args, ctx, signal) {
      const client = await ctx.client();
      const [{ images }, { entries }] = await Promise.all([
        client.call('image.list', {}, { signal }),
        client.call('image.catalog', {}, { signal }),
      ]);
      return {
        images: images.map(imageSummary),
        catalog: entries
          .filter((e) => e.state === 'available')
          .map((e) => ({ name: e.name, distro: e.distro, description: e.description })),
      };
    },
  });
