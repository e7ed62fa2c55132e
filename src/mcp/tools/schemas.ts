import { z } from 'zod';
import { methods } from '../../rpc/index.js';
import { vmCreateParamsSchema } from '../../rpc/methods/vm.js';
import type { McpLimits } from '../limits.js';

/**
 * The pieces of tool inputs, taken from the RPC method table (one source of truth: a field that changes
 * there changes here). Only what an agent is not allowed (host ports, host kernel paths) is left out.
 */
export const createShape = vmCreateParamsSchema.shape;
export const execShape = methods['vm.exec'].params.shape;
export const runShape = methods['vm.run'].params.shape;
export const pullShape = methods['image.pull'].params.shape;
export const readShape = methods['vm.files.read'].params.shape;
export const writeShape = methods['vm.files.write'].params.shape;

/** How file bytes travel in a tool call: text, or base64 for anything that is not UTF-8. */
export const encodingInput = z
  .enum(['utf8', 'base64'])
  .default('utf8')
  .describe('utf8 for text, base64 for binary content');

/** A VM by name, id or unique id prefix. */
export const vmRef = execShape.ref.describe('the VM: its name, id or a unique id prefix');

/** A shell line (run by /bin/sh -c) or an argv run as is. */
export const commandInput = z.union([
  z.string().min(1).describe('a shell command line, run with /bin/sh -c'),
  execShape.argv.describe('a program and its arguments, run as is'),
]);

export const argvOf = (command: z.output<typeof commandInput>): string[] =>
  typeof command === 'string' ? ['/bin/sh', '-c', command] : command;

/** The command's time in seconds, at most the server's --max-timeout. */
export const timeoutInput = (limits: McpLimits) =>
  z
    .number()
    .positive()
    .max(limits.maxTimeoutMs / 1000)
    .optional()
    .describe(
      `seconds the command may run before it is killed (default ${limits.timeoutMs / 1000}, ` +
        `at most ${limits.maxTimeoutMs / 1000})`,
    );

export const timeoutMsOf = (limits: McpLimits, seconds: number | undefined) =>
  seconds === undefined ? limits.timeoutMs : Math.round(seconds * 1000);
