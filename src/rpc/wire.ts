// No zod here: the CLI reads the daemon's answers through this file, and a CLI call builds no schemas (issue 20).
// The daemon's side of the wire (requests and input notifications, which it must not trust) is wire-schemas.ts.
import {
  BangerError,
  BootFailedError,
  type BootFailure,
  ERROR_CODES,
  type ErrorCode,
} from '../model/errors.js';

export type { InputParams, WireRequest } from './wire-schemas.js';

/** Newline-delimited JSON-RPC 2.0. A line longer than this is a protocol error, not a memory bill. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

type CallId = number | string;

/** An error as it crosses the wire: JSON-RPC's numeric code plus ours, its hint and typed details. */
export interface WireError {
  code: number;
  message: string;
  data: {
    code: ErrorCode;
    hint?: string;
    opId?: string;
    /** With code boot_failed: the VM that was kept and its console log. */
    boot?: BootFailure;
  };
}

/** Daemon -> client: a call's result or error, or a progress or output notification of a call. */
export type WireResponse =
  | { jsonrpc: '2.0'; id: CallId; result: unknown }
  | { jsonrpc: '2.0'; id: CallId | null; error: WireError }
  | { jsonrpc: '2.0'; method: 'progress'; params: { id: CallId; event: unknown } }
  | {
      jsonrpc: '2.0';
      method: 'output';
      params: { id: CallId; stream: 'stdout' | 'stderr'; data: string };
    };

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

/**
 * A daemon line as a response message, or undefined for one this client cannot read (skipped). Checked by
 * hand rather than by a schema: the daemon is the user's own process of the same version (a call of another
 * version is refused before it runs), so this checks the frame, not the daemon's honesty.
 */
export function parseResponse(line: string): WireResponse | undefined {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(m) || m.jsonrpc !== '2.0') return undefined;
  if ('method' in m) {
    const p = m.params;
    if (!isObject(p) || !isCallId(p.id)) return undefined;
    if (m.method === 'progress') return m as WireResponse;
    const okOutput =
      m.method === 'output' && (p.stream === 'stdout' || p.stream === 'stderr') && typeof p.data === 'string';
    return okOutput ? (m as WireResponse) : undefined;
  }
  if ('result' in m) return isCallId(m.id) ? (m as WireResponse) : undefined;
  const e = m.error;
  if (!(isCallId(m.id) || m.id === null) || !isObject(e) || !isObject(e.data)) return undefined;
  const okError =
    typeof e.code === 'number' &&
    typeof e.message === 'string' &&
    (ERROR_CODES as readonly unknown[]).includes(e.data.code) &&
    (e.data.boot === undefined || isBootFailure(e.data.boot));
  return okError ? (m as WireResponse) : undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isCallId = (v: unknown): v is CallId => typeof v === 'number' || typeof v === 'string';
const isBootFailure = (v: unknown): v is BootFailure =>
  isObject(v) &&
  typeof v.vmId === 'string' &&
  typeof v.vmName === 'string' &&
  typeof v.logPath === 'string' &&
  typeof v.keptDespiteRm === 'boolean';

/** Signals a client may forward to a running command (`vm run`/`vm exec`), named without `SIG`. */
export const FORWARDED_SIGNALS = ['INT', 'TERM', 'HUP', 'QUIT'] as const;
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

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
