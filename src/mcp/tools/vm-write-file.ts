import { z } from 'zod';
import { badRequest } from '../../model/errors.js';
import { resolveInScope } from '../ownership.js';
import { defineTool } from '../tool.js';
import { encodingInput, vmRef, writeShape } from './schemas.js';

export const vmWriteFileTool = () =>
  defineTool({
    name: 'vm_write_file',
    title: 'Write a file in a VM',
    description:
      'Write a file of a running VM (replaced atomically; at most 10 MiB). Parent directories must exist.',
    input: z.strictObject({
      vm: vmRef,
      path: writeShape.path.describe('an absolute path in the guest'),
      content: z.string().describe('the file content, in the given encoding'),
      encoding: encodingInput,
      mode: writeShape.mode.describe('permission bits as a number, e.g. 493 for 0755 (default 0644)'),
    }),
    async run(args, ctx, signal) {
      const base64 =
        args.encoding === 'base64' ? args.content : Buffer.from(args.content, 'utf8').toString('base64');
      // The RPC's own bound on file bytes (valid base64, at most 10 MiB), checked before the call.
      const data = writeShape.data.safeParse(base64);
      if (!data.success) throw badRequest(`content: ${data.error.issues.map((i) => i.message).join('; ')}`);
      const client = await ctx.client();
      const vm = await resolveInScope(client, args.vm, ctx.scope);
      const { size } = await client.call(
        'vm.files.write',
        { ref: vm.id, path: args.path, data: data.data, mode: args.mode },
        { signal },
      );
      return { vm: vm.name, path: args.path, size };
    },
  });
