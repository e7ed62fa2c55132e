/**
 * The closed set of error codes banger uses end to end: a room that knows what went wrong picks the code,
 * rooms above add context and keep it, RPC carries it unchanged, and the CLI prints it.
 */
export const ERROR_CODES = [
  'bad_request',
  'not_found',
  'already_exists',
  'not_running',
  'bad_version',
  'unknown_method',
  'unauthorized',
  'operation_failed',
  'cancelled',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface BangerErrorOptions {
  /** What the user can do about it, printed under the message. */
  hint?: string;
  cause?: unknown;
  /** The id of the operation that failed; set by the RPC server. */
  opId?: string;
}

/** The one error class of banger. Everything a user may see is one of these. */
export class BangerError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  opId: string | undefined;

  constructor(code: ErrorCode, message: string, options: BangerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BangerError';
    this.code = code;
    this.hint = options.hint;
    this.opId = options.opId;
  }
}

export const badRequest = (message: string, options?: BangerErrorOptions) =>
  new BangerError('bad_request', message, options);
export const notFound = (message: string, options?: BangerErrorOptions) =>
  new BangerError('not_found', message, options);
export const alreadyExists = (message: string, options?: BangerErrorOptions) =>
  new BangerError('already_exists', message, options);
export const operationFailed = (message: string, options?: BangerErrorOptions) =>
  new BangerError('operation_failed', message, options);

/** Turns anything thrown into a BangerError, keeping the code when it already has one. */
export function toBangerError(err: unknown): BangerError {
  if (err instanceof BangerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BangerError('operation_failed', message, { cause: err });
}
