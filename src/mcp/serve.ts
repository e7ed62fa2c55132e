import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { BangerError } from '../model/errors.js';
import { createMcpServer } from './server.js';
import type { ToolContext } from './tool.js';

/**
 * Serves MCP on stdin/stdout until stdin ends. stdout carries the protocol only: every log line goes to
 * `log` (stderr).
 */
export async function serveMcp(
  ctx: ToolContext,
  version: string,
  log: (line: string) => void,
): Promise<void> {
  const shutdown = new AbortController();
  const server = createMcpServer(ctx, version, shutdown.signal);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    server.server.onclose = resolve;
  });
  await server.connect(transport);
  log(
    `banger mcp serve: ready on stdio (${ctx.scope.allVms ? 'every VM' : 'only the VMs it creates'}; ` +
      `output ${ctx.limits.maxOutputBytes} bytes per stream, timeout ${ctx.limits.timeoutMs / 1000} s)`,
  );
  // The client went away: nobody reads the answers, so what runs for it stops.
  process.stdin.once('end', () => {
    shutdown.abort(new BangerError('cancelled', 'the MCP client closed the connection'));
    void server.close();
  });
  await closed;
}
