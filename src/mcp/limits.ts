/**
 * The bounds `banger mcp serve` puts on what an agent asks for. Each is a flag of the command (docs/mcp.md);
 * the defaults suit a model's context window and a TCG guest on a busy host.
 */
export interface McpLimits {
  /** Bytes of each stream (stdout, stderr) a tool result carries; the rest is dropped and reported. */
  maxOutputBytes: number;
  /** A command's time when the tool call gives no `timeout`. */
  timeoutMs: number;
  /** The most a tool call may ask for in `timeout`. */
  maxTimeoutMs: number;
  /** Everything before a command: image pull, create, boot, workspace copy (and `image_pull`). */
  setupTimeoutMs: number;
  /** A command past its time gets TERM, then KILL this much later (the process group, in the guest). */
  killGraceMs: number;
}

export const DEFAULT_LIMITS: McpLimits = {
  maxOutputBytes: 64 * 1024,
  timeoutMs: 120_000,
  maxTimeoutMs: 3_600_000,
  setupTimeoutMs: 900_000,
  killGraceMs: 2_000,
};
