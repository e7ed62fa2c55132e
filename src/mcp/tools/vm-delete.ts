import { z } from 'zod';
import { resolveInScope } from '../ownership.js';
import { defineTool } from '../tool.js';
import { vmRef } from './schemas.js';

export const vmDeleteTool = () =>
  defineTool({
    name: 'vm_delete',
    title: 'Delete a VM',
    description:
      'Stop a VM and remove everything it owns. Only VMs this server created (any VM with --all-vms).',
    input: z.strictObject({ vm: vmRef }),
    destructive: true,
    async run(args, ctx, signal) {
      const client = await ctx.client();
      const vm = await resolveInScope(client, args.vm, ctx.scope);
      return { deleted: await client.call('vm.delete', { ref: vm.id }, { signal }) };
    },
  });
