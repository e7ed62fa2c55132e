import { badRequest, operationFailed } from '../../model/errors.js';
import type { TeardownIdentity } from '../../model/identity.js';
import type { LeaseStore } from './lease-store.js';
import { guestAddresses, inSubnet } from './subnet.js';

export type IpIdentity = Extract<TeardownIdentity, { kind: 'ip' }>;

export interface IpAllocatorOptions {
  store: LeaseStore;
  bridgeIp: string;
  prefix: number;
}

/** Guest IP allocation in the bridge subnet. */
export interface IpAllocator {
  /**
   * Leases the lowest free address to `owner` (a VM id). Asking again for the same owner returns its
   * existing lease, so a retried create after a crash does not leak an address.
   */
  allocate(owner: string): Promise<{ address: string; identity: IpIdentity }>;
  /** Frees the address; succeeds when it was not leased. */
  release(identity: IpIdentity): Promise<void>;
  /** address -> owner, as persisted. */
  leases(): Promise<Record<string, string>>;
}

export function createIpAllocator({ store, bridgeIp, prefix }: IpAllocatorOptions): IpAllocator {
  // Validate the subnet now, not at the first VM create.
  guestAddresses(bridgeIp, prefix).next();
  return {
    async allocate(owner) {
      if (!owner) throw badRequest('an IP lease needs an owner');
      const address = await store.update((leases) => {
        const held = Object.entries(leases).find(([ip, o]) => o === owner && inSubnet(ip, bridgeIp, prefix));
        if (held) return { leases, result: held[0] };
        for (const ip of guestAddresses(bridgeIp, prefix)) {
          if (!(ip in leases)) return { leases: { ...leases, [ip]: owner }, result: ip };
        }
        throw operationFailed(`no free guest address in ${bridgeIp}/${prefix}`, {
          hint: 'delete unused VMs or choose a larger subnet (a smaller cidr)',
        });
      });
      return { address, identity: { kind: 'ip', address } };
    },
    async release(identity) {
      await store.update((leases) => {
        const { [identity.address]: _gone, ...rest } = leases;
        return { leases: rest, result: undefined };
      });
    },
    leases: () => store.read(),
  };
}
