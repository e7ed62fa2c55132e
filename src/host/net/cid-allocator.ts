import { badRequest, operationFailed } from '../../model/errors.js';
import type { TeardownIdentity } from '../../model/identity.js';
import type { LeaseStore } from './lease-store.js';

export type CidIdentity = Extract<TeardownIdentity, { kind: 'cid' }>;

/** 0-2 are the hypervisor, the local loopback and the host (vsock(7)): guests start at 3. */
export const FIRST_GUEST_CID = 3;
/**
 * How far allocation looks. The kernel takes 32-bit CIDs, but the lowest free one is always within the
 * number of VMs; the bound only turns a runaway lease file into an error instead of a long scan.
 */
export const MAX_GUEST_CID = 0xffff;

/**
 * vsock context ids for guests. A CID is host-wide (vhost-vsock refuses a second VM with the same one, and
 * Firecracker's hybrid vsock names it in the guest), so it is leased like a guest IP: lowest free first,
 * persisted, never handed out twice, released when its VM is deleted.
 */
export interface CidAllocator {
  /** Leases the lowest free CID to `owner` (a VM id); the same owner asking again gets its lease back. */
  allocate(owner: string): Promise<{ cid: number; identity: CidIdentity }>;
  /** Frees the CID; succeeds when it was not leased. */
  release(identity: CidIdentity): Promise<void>;
  /** CID (as a decimal string) -> owner, as persisted. */
  leases(): Promise<Record<string, string>>;
}

export function createCidAllocator(store: LeaseStore): CidAllocator {
  return {
    async allocate(owner) {
      if (!owner) throw badRequest('a vsock CID lease needs an owner');
      const cid = await store.update((leases) => {
        const held = Object.entries(leases).find(([, o]) => o === owner);
        if (held) return { leases, result: Number(held[0]) };
        for (let n = FIRST_GUEST_CID; n <= MAX_GUEST_CID; n++) {
          if (!(String(n) in leases)) return { leases: { ...leases, [String(n)]: owner }, result: n };
        }
        throw operationFailed(`no free vsock CID from ${FIRST_GUEST_CID} to ${MAX_GUEST_CID}`, {
          hint: 'delete unused VMs',
        });
      });
      return { cid, identity: { kind: 'cid', cid } };
    },
    async release(identity) {
      await store.update((leases) => {
        const { [String(identity.cid)]: _gone, ...rest } = leases;
        return { leases: rest, result: undefined };
      });
    },
    leases: () => store.read(),
  };
}
