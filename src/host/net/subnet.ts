import { badRequest } from '../../model/errors.js';
import { validateIPv4, validatePrefix } from '../priv/validate.js';

/** An IPv4 subnet as integers, for allocation arithmetic. */
export interface Subnet {
  network: number;
  broadcast: number;
  prefix: number;
}

export function ipToInt(address: string): number {
  return validateIPv4(address)
    .split('.')
    .reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

export function subnetOf(address: string, prefix: number): Subnet {
  const p = validatePrefix(prefix);
  const size = 2 ** (32 - p);
  const network = Math.floor(ipToInt(address) / size) * size;
  return { network, broadcast: network + size - 1, prefix: p };
}

/** Addresses a guest may get: the subnet minus network, broadcast and the bridge (gateway) address. */
export function* guestAddresses(bridgeIp: string, prefix: number): Generator<string> {
  const s = subnetOf(bridgeIp, prefix);
  const gateway = ipToInt(bridgeIp);
  if (s.prefix > 30) {
    throw badRequest(`a /${s.prefix} bridge subnet has no room for guests`, {
      hint: 'use a cidr of 30 or less',
    });
  }
  if (gateway === s.network || gateway === s.broadcast) {
    throw badRequest(`bridge_ip ${bridgeIp} is the network or broadcast address of its /${prefix}`, {
      hint: 'use a host address such as x.y.z.1',
    });
  }
  for (let n = s.network + 1; n < s.broadcast; n++) if (n !== gateway) yield intToIp(n);
}

export function inSubnet(address: string, bridgeIp: string, prefix: number): boolean {
  const s = subnetOf(bridgeIp, prefix);
  const n = ipToInt(address);
  return n > s.network && n < s.broadcast && n !== ipToInt(bridgeIp);
}
