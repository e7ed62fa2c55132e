export { BoundedOutput, utf8Prefix, utf8Suffix } from './bounded-output.js';
export type { CommandOutcome } from './command.js';
export { DEFAULT_LIMITS, type McpLimits } from './limits.js';
export { assertInScope, inScope, MCP_CREATOR, type VmScope } from './ownership.js';
export { serveMcp } from './serve.js';
export { createMcpServer } from './server.js';
export type { ToolContext } from './tool.js';
