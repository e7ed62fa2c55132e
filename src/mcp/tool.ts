import type { z } from 'zod';
import type { ProgressEvent } from '../model/progress.js';
import type { RpcClient } from '../rpc/index.js';
import type { McpLimits } from './limits.js';
import type { VmScope } from './ownership.js';

/** What every tool gets: the daemon client (started on first use, as the CLI's), the bounds, the scope. */
export interface ToolContext {
  client(): Promise<RpcClient>;
  limits: McpLimits;
  scope: VmScope;
}

/** One MCP tool: its input is a zod object built from the RPC method table's schemas. */
export interface Tool<S extends z.ZodObject = z.ZodObject> {
  name: string;
  title: string;
  description: string;
  input: S;
  /** MCP annotations: a client may ask before calling a destructive tool. */
  readOnly?: boolean;
  destructive?: boolean;
  /**
   * The tool times itself (a command's clock, vm_run's setup): the server does not put its --setup-timeout
   * bound on the whole call.
   */
  ownClock?: boolean;
  /** `onProgress` is set when the MCP client asked for progress (sent a progressToken). */
  run(
    args: z.output<S>,
    ctx: ToolContext,
    signal: AbortSignal,
    onProgress?: (event: ProgressEvent) => void,
  ): Promise<Record<string, unknown>>;
}

/** Erases a tool's input type so the server can hold them in one list (the SDK checks args against input). */
export type AnyTool = Omit<Tool, 'run'> & {
  run(
    args: never,
    ctx: ToolContext,
    signal: AbortSignal,
    onProgress?: (event: ProgressEvent) => void,
  ): Promise<Record<string, unknown>>;
};

export const defineTool = <S extends z.ZodObject>(tool: Tool<S>): AnyTool => tool as unknown as AnyTool;
