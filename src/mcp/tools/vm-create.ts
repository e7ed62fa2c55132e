import { z } from 'zod';
import { MCP_CREATOR } from '../ownership.js';
import { defineTool } from '../tool.js';
import { createShape } from './schemas.js';
import { vmSummary } from './summaries.js';

export const vmCreateTool = () =>
  defineTool({
    name: 'vm_create',
    title: 'Create and start a VM',
    description:
      'Create a microVM from an image (pulled when missing) and start it; it runs until vm_delete. ' +
      'Use vm_exec, vm_read_file and vm_write_file on it.',
    input: z.strictObject({
      name: createShape.name.describe('a DNS label (default: generated)'),
      image: createShape.image.describe('image name or OCI reference (default: the configured default)'),
      vcpu: createShape.vcpu,
      memoryMib: createShape.memoryMib,
      diskSize: createShape.diskSize.describe('work disk size, e.g. "8G"'),
      nat: createShape.nat.describe('give the guest outbound network access'),
    }),
    async run(args, ctx, signal) {
      const client = await ctx.client();
      const { vm } = await client.call('vm.create', { ...args, createdBy: MCP_CREATOR }, { signal });
      return { vm: vmSummary(vm, args.image) };
    },
  });
