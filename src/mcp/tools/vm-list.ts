import { noParams } from '../../rpc/methods/define.js';
import { inScope } from '../ownership.js';
import { defineTool } from '../tool.js';
import { vmSummary } from './summaries.js';

export const vmListTool = () =>
  defineTool({
    name: 'vm_list',
    title: 'List VMs',
    description:
      'The VMs this server created (every VM when it runs with --all-vms), in any state, with their addresses.',
    input: noParams,
    readOnly: true,
    async run(_args, ctx, signal) {
      const client = await ctx.client();
      const [{ vms }, { images }] = await Promise.all([
        client.call('vm.list', {}, { signal }),
        client.call('image.list', {}, { signal }),
      ]);
      const imageName = new Map(images.map((i) => [i.id, i.name]));
      return {
        vms: vms.filter((vm) => inScope(vm, ctx.scope)).map((vm) => vmSummary(vm, imageName.get(vm.imageId))),
      };
    },
  });
