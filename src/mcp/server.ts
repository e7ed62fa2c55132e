import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { progressRelay } from './progress.js';
import { errorResult, okResult } from './result.js';
import type { ToolContext } from './tool.js';
import { allTools } from './tools/index.js';
import { setupSignal } from './tools/setup-signal.js';

const INSTRUCTIONS =
  'banger runs Linux microVMs on this host. vm_run is the one-shot path (a fresh VM, one command, ' +
  'deleted after). For several steps: vm_create, then vm_exec / vm_write_file / vm_read_file, then ' +
  'vm_delete. Output is truncated and commands are killed at their timeout; results say when.';

/**
 * The MCP server over banger's tools; the caller connects it to a transport. `shutdown` cancels every call
 * in flight (the server is going away): their commands are killed in the guest, as on a cancellation.
 */
export function createMcpServer(ctx: ToolContext, version: string, shutdown?: AbortSignal): McpServer {
  const server = new McpServer({ name: 'banger', version }, { instructions: INSTRUCTIONS });
  for (const tool of allTools(ctx.limits)) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.input,
        annotations: {
          title: tool.title,
          readOnlyHint: tool.readOnly ?? false,
          destructiveHint: tool.destructive ?? false,
          openWorldHint: false,
        },
      },
      async (args: unknown, extra) => {
        try {
          const request = shutdown ? AbortSignal.any([extra.signal, shutdown]) : extra.signal;
          const bound = tool.ownClock ? undefined : setupSignal(ctx.limits, request, tool.name);
          try {
            const onProgress = progressRelay(extra);
            return okResult(await tool.run(args as never, ctx, bound?.signal ?? request, onProgress));
          } finally {
            bound?.done();
          }
        } catch (err) {
          return errorResult(err);
        }
      },
    );
  }
  return server;
}
