import { Command } from '@commander-js/extra-typings';
import { DEFAULT_LIMITS, type McpLimits } from '../../mcp/limits.js';
import { badRequest } from '../../model/errors.js';
import { formatSize, parseSize } from '../../model/sizes.js';
import { type CliContext, examples } from '../context.js';

function seconds(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(value > 0))
    throw badRequest(`${flag} wants a number of seconds, got ${JSON.stringify(text)}`);
  return Math.round(value * 1000);
}

/** The bounds from the flags, refused when they contradict each other. */
export function limitsFromFlags(opts: {
  maxOutput: string;
  timeout: string;
  maxTimeout: string;
  setupTimeout: string;
}): McpLimits {
  const maxOutputBytes = parseSize(opts.maxOutput);
  if (maxOutputBytes < 1024) throw badRequest('--max-output must be at least 1KiB');
  const limits = {
    ...DEFAULT_LIMITS,
    maxOutputBytes,
    timeoutMs: seconds('--timeout', opts.timeout),
    maxTimeoutMs: seconds('--max-timeout', opts.maxTimeout),
    setupTimeoutMs: seconds('--setup-timeout', opts.setupTimeout),
  };
  if (limits.timeoutMs > limits.maxTimeoutMs) throw badRequest('--timeout is larger than --max-timeout');
  return limits;
}

/** `banger mcp serve`: banger's VMs as tools for an AI agent, over MCP on stdio. */
export function mcpCommands(ctx: CliContext) {
  const mcp = new Command('mcp').description('serve banger to AI agents over the Model Context Protocol');
  mcp
    .command('serve')
    .description(
      'speak MCP on stdin/stdout (tools: vm_run, vm_create, vm_exec, vm_read_file, vm_write_file, ' +
        'vm_list, vm_ports, vm_delete, image_list, image_pull); logs go to stderr',
    )
    .option(
      '--max-output <size>',
      'bytes of stdout and of stderr a result carries; the rest is dropped and reported',
      formatSize(DEFAULT_LIMITS.maxOutputBytes).replace(' ', ''),
    )
    .option(
      '--timeout <seconds>',
      'time a command gets when the tool call says none; then TERM, and KILL 2 s later',
      String(DEFAULT_LIMITS.timeoutMs / 1000),
    )
    .option(
      '--max-timeout <seconds>',
      'the longest timeout a tool call may ask for',
      String(DEFAULT_LIMITS.maxTimeoutMs / 1000),
    )
    .option(
      '--setup-timeout <seconds>',
      'bound on image pull, VM create and boot, workspace copy',
      String(DEFAULT_LIMITS.setupTimeoutMs / 1000),
    )
    .option('--all-vms', 'let the tools touch every VM, not only those this server created')
    .addHelpText(
      'after',
      examples(
        'banger mcp serve',
        'banger mcp serve --max-output 16KiB --timeout 60',
        `claude mcp add banger -- banger mcp serve   # see docs/mcp.md for other clients`,
      ),
    )
    .action(async (opts) => {
      const limits = limitsFromFlags(opts);
      // Loaded only here: the MCP SDK is large, and every other banger command starts faster without it.
      const { serveMcp } = await import('../../mcp/serve.js');
      await serveMcp(
        { client: () => ctx.client(), limits, scope: { allVms: opts.allVms ?? false } },
        ctx.version,
        (line) => ctx.err.write(`${line}\n`),
      );
    });
  return mcp;
}
