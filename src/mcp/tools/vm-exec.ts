import { z } from 'zod';
import { boundedCommand } from '../command.js';
import type { McpLimits } from '../limits.js';
import { resolveInScope } from '../ownership.js';
import { defineTool } from '../tool.js';
import { argvOf, commandInput, execShape, timeoutInput, timeoutMsOf, vmRef } from './schemas.js';

export const vmExecTool = (limits: McpLimits) =>
  defineTool({
    name: 'vm_exec',
    title: 'Run a command in a running VM',
    description:
      'Run one command in a running VM through its guest agent. Returns stdout, stderr, the exit code, ' +
      'whether the command was killed at its timeout, and whether output was truncated.',
    input: z.strictObject({
      vm: vmRef,
      command: commandInput,
      env: execShape.env.describe('KEY=VALUE pairs for the command'),
      cwd: execShape.cwd.describe('working directory in the guest'),
      timeout: timeoutInput(limits),
    }),
    ownClock: true,
    async run(args, ctx, signal) {
      const client = await ctx.client();
      const vm = await resolveInScope(client, args.vm, ctx.scope);
      const { outcome } = await boundedCommand(
        client,
        'vm.exec',
        { ref: vm.id, argv: argvOf(args.command), env: args.env, cwd: args.cwd },
        { limits: ctx.limits, timeoutMs: timeoutMsOf(ctx.limits, args.timeout), signal },
      );
      return { vm: vm.name, ...outcome };
    },
  });
