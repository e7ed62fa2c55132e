import { z } from 'zod';
import { resolveInScope } from '../ownership.js';
import { defineTool } from '../tool.js';
import { vmRef } from './schemas.js';

export const vmPortsTool = () =>
  defineTool({
    name: 'vm_ports',
    title: "List a VM's listening ports",
    description:
      "A running VM's listening TCP and bound UDP ports, with the address to reach each from the host.",
    input: z.strictObject({ vm: vmRef }),
    readOnly: true,
    async run(args, ctx, signal) {
      const client = await ctx.client();
      const vm = await resolveInScope(client, args.vm, ctx.scope);
      return await client.call('vm.ports', { ref: vm.id }, { signal });
    },
  });
