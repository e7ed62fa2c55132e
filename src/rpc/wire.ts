import { z } from 'zod';
import { BangerError, BootFailedError, bootFailureSchema, ERROR_CODES } from '../model/errors.js';

/** Newline-delimited JSON-RPC 2.0. A line longer than this is a protocol error, not a memory bill. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

export const requestSchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: z.union([z.number(), z.string()]),
  method: z.string(),
  params: z.unknown().optional(),
  meta: z.object({ version: z.string() }).optional(),
});

export const wireErrorSchema = z.object({
  code: z.number(),
  message: z.string(),
  data: z.object({
    code: z.enum(ERROR_CODES),
    hint: z.string().optional(),
    opId: z.string().optional(),
    /** With code boot_failed: the VM that was kept and its console log. */
    boot: bootFailureSchema.optional(),
  }),
});

type WireError = z.infer<typeof wireErrorSchema>;

/** An error as it crosses the wire: its code, hint and typed details travel unchanged. */
export function errorToWire(error: BangerError): Omit<WireError, 'code'> {
  return {
    message: error.message,
    data: {
      code: error.code,
      hint: error.hint,
      opId: error.opId,
      boot: error instanceof BootFailedError ? error.boot : undefined,
    },
  };
}

/** The error the daemon threw, rebuilt on the client with the same type. */
export function errorFromWire({ message, data }: Pick<WireError, 'message' | 'data'>): BangerError {
  const options = { hint: data.hint, opId: data.opId };
  if (data.code === 'boot_failed' && data.boot) return new BootFailedError(message, data.boot, options);
  return new BangerError(data.code, message, options);
}

export const responseSchema = z.union([
  z.object({ jsonrpc: z.literal('2.0'), id: z.union([z.number(), z.string()]), result: z.unknown() }),
  z.object({
    jsonrpc: z.literal('2.0'),
    id: z.union([z.number(), z.string()]).nullable(),
    error: wireErrorSchema,
  }),
  z.object({
    jsonrpc: z.literal('2.0'),
    method: z.literal('progress'),
    params: z.object({ id: z.union([z.number(), z.string()]), event: z.unknown() }),
  }),
  z.object({
    jsonrpc: z.literal('2.0'),
    method: z.literal('output'),
    params: z.object({
      id: z.union([z.number(), z.string()]),
      stream: z.enum(['stdout', 'stderr']),
      data: z.string(),
    }),
  }),
]);

export type WireResponse = z.infer<typeof responseSchema>;

/** Signals a client may forward to a running command (`vm run`/`vm exec`), named without `SIG`. */
export const FORWARDED_SIGNALS = ['INT', 'TERM', 'HUP', 'QUIT'] as const;
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

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

export type WireRequest = z.infer<typeof requestSchema>;
export type InputParams = z.infer<typeof inputSchema>['params'];

/** JSON-RPC numeric codes for our string codes (the string code travels in `data.code`). */
export function jsonRpcCode(code: string): number {
  if (code === 'unknown_method') return -32601;
  if (code === 'bad_request') return -32602;
  return -32000;
}

/**
 * Splits a byte stream into lines, refusing lines over MAX_LINE_BYTES. Returns a feed function; each
 * complete line goes to `onLine`.
 */
export function lineSplitter(
  onLine: (line: string) => void,
  onOverflow: () => void,
): (chunk: Buffer) => void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  return (chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      const line = Buffer.concat(pending).toString('utf8');
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      if (line.trim()) onLine(line);
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) {
        pending = [];
        pendingBytes = 0;
        onOverflow();
      }
    }
  };
}
