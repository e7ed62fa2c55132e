import { BangerError, badRequest } from '../model/errors.js';
import { MACHINES, type VmmHandles, type VmmLaunchSpec, vmmHandlesSchema } from './types.js';

/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), and no character QEMU's option syntax treats specially. */
const TAP_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/**
 * Checks what a spec carries into VMM command lines and API bodies: values with a ',' or '=' could add QEMU
 * options, odd sizes fail deep inside the VMM with worse messages.
 */
export function validateLaunchSpec(spec: VmmLaunchSpec): void {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(spec.name))
    throw badRequest(`VM name ${JSON.stringify(spec.name)} is not a DNS label`);
  // The spec may come from JSON (handles, RPC): an unknown machine must not reach QEMU's -M.
  if (spec.machine !== undefined && !MACHINES.includes(spec.machine))
    throw badRequest(`machine must be one of ${MACHINES.join(', ')}, not ${JSON.stringify(spec.machine)}`);
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > 64)
    throw badRequest(`vcpus must be an integer from 1 to 64, not ${spec.vcpus}`);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 64)
    throw badRequest(`memory must be at least 64 MiB, not ${spec.memoryMiB}`);
  if (spec.net && !TAP_NAME.test(spec.net.tap))
    throw badRequest(`tap name ${JSON.stringify(spec.net.tap)} is not a valid interface name`);
  if (spec.net && !MAC.test(spec.net.mac))
    throw badRequest(`MAC ${JSON.stringify(spec.net.mac)} is not aa:bb:cc:dd:ee:ff`);
  if (spec.cid !== undefined && (!Number.isInteger(spec.cid) || spec.cid < 3 || spec.cid > 0xffff_fffe))
    throw badRequest(`vsock CID must be an integer of 3 or more, not ${spec.cid}`);
  for (const p of [
    spec.runDir,
    spec.kernelPath,
    spec.initrdPath,
    spec.rootDisk.path,
    ...(spec.extraDisks ?? []).map((d) => d.path),
  ])
    if (p !== undefined && !p.startsWith('/')) throw badRequest(`paths must be absolute: ${p}`);
  if (spec.cmdline.includes('\n')) throw badRequest('the kernel command line must be one line');
}

/** An aborted start is `cancelled`, whatever the abort reason object was. */
export function throwIfCancelled(signal: AbortSignal | undefined, name: string): void {
  if (signal?.aborted) throw new BangerError('cancelled', `start of VM ${name} was cancelled`);
}

/** Handles come back from handles.json, which anyone with access may have edited: parse, never trust. */
export function parseHandles(input: unknown): VmmHandles {
  const r = vmmHandlesSchema.safeParse(input);
  if (!r.success)
    throw badRequest(
      `VMM handles are malformed: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return r.data;
}
