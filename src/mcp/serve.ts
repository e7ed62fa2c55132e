import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
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
  const server = createMcpServer(ctx, version);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    server.server.onclose = resolve;
  });
  await server.connect(transport);
  log(
    `banger mcp serve: ready on stdio (${ctx.scope.allVms ? 'every VM' : 'only the VMs it creates'}; ` +
      `output ${ctx.limits.maxOutputBytes} bytes per stream, timeout ${ctx.limits.timeoutMs / 1000} s)`,
  );
  process.stdin.once('end', () => void server.close());
  await closed;
}
