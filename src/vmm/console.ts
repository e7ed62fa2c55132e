/**
 * The guest controls what its serial console prints, so `console.log` is capped: at this size it becomes
 * `console.log.1` (replacing the previous one) and a new `console.log` starts. At most 8 MiB is on disk per
 * VM, and at least the last 4 MiB of output (docs/vmm.md). The rotation is host/console-keeper.ts.
 */
export const CONSOLE_LOG_MAX_BYTES = 4 * 1024 * 1024;
