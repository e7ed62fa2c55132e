import { z } from 'zod';
import { FORWARDED_SIGNALS } from './wire.js';

// The daemon's side of the wire: what a client sends is checked here before anything acts on it.

export const requestSchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: z.union([z.number(), z.string()]),
  method: z.string(),
  params: z.unknown().optional(),
  meta: z.object({ version: z.string() }).optional(),
});

/**
 * Client -> daemon during a call: bytes for the call's stdin (base64), or its end. A notification (no
 * top-level id), so it never starts a call of its own.
 */
export const inputSchema = z.object({
  jsonrpc: z.literal('2.0'),
  method: z.literal('input'),
  params: z.object({
    id: z.union([z.number(), z.string()]),
    data: z.string().optional(),
    eof: z.boolean().optional(),
    /** The client's terminal was resized (a call with a tty). */
    resize: z
      .object({ rows: z.number().int().min(1).max(10000), cols: z.number().int().min(1).max(10000) })
      .optional(),
    /** The client got this signal (Ctrl-C, …) and forwards it to the call's command. */
    signal: z.enum(FORWARDED_SIGNALS).optional(),
    /**
     * The client gave up on the call (abort, timeout) but keeps the connection for others: the daemon
     * cancels it as it would for a client that went away.
     */
    cancel: z.literal(true).optional(),
  }),
});

export type InputParams = z.infer<typeof inputSchema>['params'];
export type WireRequest = z.infer<typeof requestSchema>;
