import { z } from 'zod';
import { utf8Prefix } from '../bounded-output.js';
import { resolveInScope } from '../ownership.js';
import { defineTool } from '../tool.js';
import { encodingInput, readShape, vmRef } from './schemas.js';

export const vmReadFileTool = () =>
  defineTool({
    name: 'vm_read_file',
    title: 'Read a file in a VM',
    description:
      "Read a regular file of a running VM. Content past the server's --max-output is cut off; " +
      '"truncated" and "size" say so.',
    input: z.strictObject({
      vm: vmRef,
      path: readShape.path.describe('an absolute path in the guest'),
      encoding: encodingInput,
    }),
    readOnly: true,
    async run(args, ctx, signal) {
      const client = await ctx.client();
      const vm = await resolveInScope(client, args.vm, ctx.scope);
      const { data } = await client.call('vm.files.read', { ref: vm.id, path: args.path }, { signal });
      const bytes = Buffer.from(data, 'base64');
      const kept = bytes.subarray(0, ctx.limits.maxOutputBytes);
      return {
        vm: vm.name,
        path: args.path,
        size: bytes.length,
        truncated: kept.length < bytes.length,
        encoding: args.encoding,
        content: args.encoding === 'base64' ? kept.toString('base64') : utf8Prefix(kept),
      };
    },
  });
