/**
 * The banger SDK, the package's main export: `import { Banger } from 'banger'`. Only what this file exports
 * is public; the daemon's internals are not importable (package.json `exports`). Guide: docs/sdk.md.
 */
export { BangerError, BootFailedError, type BootFailure, type ErrorCode } from '../model/errors.js';
export type { Image } from '../model/image.js';
export type { ProgressEvent } from '../model/progress.js';
export type { VM as VmInfo } from '../model/vm.js';
export {
  Banger,
  type BangerOptions,
  type CreateVmOptions,
  type LongCallOptions,
  type PullOptions,
  type RunVmOptions,
} from './banger.js';
export { type ExecOptions, ExecProcess, type ExitStatus } from './exec.js';
export {
  type DirEntry,
  type ForwardInfo,
  type GuestPort,
  RUN_MAX_BYTES,
  type RunOptions,
  type RunResult,
  Vm,
  type VmStats,
  type WriteFileOptions,
} from './vm.js';
