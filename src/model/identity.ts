/**
 * Teardown identities: everything needed to undo one host side effect, and nothing else. Written durably
 * (VM runtime in the store + handles.json) before the effect is made and cleared once teardown is
 * confirmed, so reconcile can undo it after a crash without any in-memory state.
 * A bare pid can be reused by the kernel, so processes carry their start time (field 22 of /proc/PID/stat).
 * A loop identity may be recorded before the device is known (`device: ''`): teardown then finds the
 * device by its backing file, which is why every loop banger attaches has a per-VM backing path.
 * NAT rules carry their backend, and for iptables the uplink, because iptables deletes a rule by its spec.
 */
export type TeardownIdentity =
  | { kind: 'bridge'; name: string; netns?: string }
  | { kind: 'tap'; name: string; netns?: string }
  | {
      kind: 'nat';
      table: string;
      tap: string;
      guestIp: string;
      netns?: string;
      backend?: 'nft' | 'iptables';
      uplink?: string;
    }
  | { kind: 'ip'; address: string }
  | { kind: 'loop'; device: string; backingFile: string }
  | { kind: 'dm'; name: string }
  | { kind: 'process'; pid: number; startTime: number }
  | { kind: 'file'; path: string };
