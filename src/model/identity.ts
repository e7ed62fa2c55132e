/**
 * Teardown identities: everything needed to undo one host side effect, and nothing else. Written durably
 * (VM runtime in the store + handles.json) before the effect is made and cleared once teardown is
 * confirmed, so reconcile can undo it after a crash without any in-memory state.
 * A bare pid can be reused by the kernel, so processes carry their start time (field 22 of /proc/PID/stat).
 */
export type TeardownIdentity =
  | { kind: 'tap'; name: string; netns?: string }
  | { kind: 'nat'; table: string; tap: string; guestIp: string; netns?: string }
  | { kind: 'ip'; address: string }
  | { kind: 'loop'; device: string; backingFile: string }
  | { kind: 'dm'; name: string }
  | { kind: 'process'; pid: number; startTime: number }
  | { kind: 'file'; path: string };
