import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { toBangerError } from '../model/errors.js';

/** A tool's answer: JSON text for any client, the same object as structured content for those that read it. */
export const okResult = (value: Record<string, unknown>): CallToolResult => ({
  content: [{ type: 'text', text: JSON.stringify(value, null, 2) }],
  structuredContent: value,
});

/** A failure as a tool error (the agent reads it and may try again), with banger's code and hint. */
export function errorResult(err: unknown): CallToolResult {
  const error = toBangerError(err);
  const text = `${error.code}: ${error.message}${error.hint ? `\nhint: ${error.hint}` : ''}`;
  return {
    content: [{ type: 'text', text }],
    structuredContent: { error: { code: error.code, message: error.message, hint: error.hint ?? null } },
    isError: true,
  };
}
