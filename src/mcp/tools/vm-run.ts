import { z } from 'zod';
import { boundedCommand } from '../command.js';
import type { McpLimits } from '../limits.js';
import { MCP_CREATOR } from '../ownership.js';
import { defineTool } from '../tool.js';
import {
  argvOf,
  commandInput,
  createShape,
  execShape,
  runShape,
  timeoutInput,
  timeoutMsOf,
} from './schemas.js';

export const vmRunTool = (limits: McpLimits) =>
  defineTool({
    name: 'vm_run',
    title: 'Run a command in a fresh VM',
    description:
      'Create a microVM from an image, optionally copy a host directory in (to /root/repo, where the ' +
      'command then runs), run one command, and delete the VM (unless keep). Returns stdout, stderr, the ' +
      'exit code, whether the command was killed at its timeout, and whether output was truncated.',
    input: z.strictObject({
      image: createShape.image.describe('image name or OCI reference (default: the configured default)'),
      command: commandInput,
      workspace: runShape.workspace.describe('an absolute host directory copied to /root/repo'),
      env: execShape.env.describe('KEY=VALUE pairs for the command'),
      cwd: execShape.cwd.describe('working directory in the guest'),
      nat: createShape.nat.describe('give the guest outbound network access'),
      keep: z
        .boolean()
        .default(false)
        .describe('keep the VM after the command (vm_exec into it, vm_delete it when done)'),
      timeout: timeoutInput(limits),
      fromSnapshot: runShape.fromSnapshot.describe(
        'restore this snapshot (banger snapshot create) instead of booting: it fixes the image, size and ' +
          'network, so leave image and nat out',
      ),
    }),
    ownClock: true,
    async run(args, ctx, signal) {
      const client = await ctx.client();
      const { result, outcome } = await boundedCommand(
        client,
        'vm.run',
        {
          create: { image: args.image, nat: args.nat, createdBy: MCP_CREATOR },
          argv: argvOf(args.command),
          env: args.env,
          cwd: args.cwd,
          workspace: args.workspace,
          rm: !args.keep,
          fromSnapshot: args.fromSnapshot,
        },
        { limits: ctx.limits, timeoutMs: timeoutMsOf(ctx.limits, args.timeout), signal },
      );
      return {
        vm: result?.vm.name ?? null,
        kept: args.keep,
        ...(result?.workspace ? { workspace: result.workspace.guestDir } : {}),
        ...outcome,
      };
    },
  });
