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
  /** A VM's VMM ran but its guest never came up; the VM is kept for its console log (BootFailedError). */
  'boot_failed',
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

/**
 * What a failed boot leaves behind: the VM, kept in state error, and the console log that says why. A plain
 * type (no zod here): every CLI call loads this file, and a CLI call does not build schemas.
 */
export interface BootFailure {
  vmId: string;
  vmName: string;
  logPath: string;
  /** The caller asked for the VM to be deleted (`vm run --rm`) and it was kept all the same. */
  keptDespiteRm: boolean;
}

/**
 * A boot that failed on its own (the guest powered off, its agent never answered), as opposed to a start
 * refused or cancelled before the guest ran: callers decide on this type, never on the message.
 */
export class BootFailedError extends BangerError {
  readonly boot: BootFailure;

  constructor(message: string, boot: BootFailure, options: BangerErrorOptions = {}) {
    super('boot_failed', message, {
      ...options,
      hint:
        options.hint ??
        `look at its boot with: banger vm logs ${boot.vmName}; then remove it with: banger vm delete ${boot.vmName}`,
    });
    this.name = 'BootFailedError';
    this.boot = boot;
  }

  /** The same failure, saying the VM was kept although the caller asked for its deletion. */
  keptDespiteRm(): BootFailedError {
    return new BootFailedError(
      this.message,
      { ...this.boot, keptDespiteRm: true },
      {
        hint: this.hint,
        cause: this,
        opId: this.opId,
      },
    );
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
