import { z } from 'zod';
import { ERROR_CODES } from '../../model/errors.js';

/**
 * The wire protocol between the owner's daemon and the root helper (`bangerd-root`): one request per
 * connection, one JSON object on one line each way. Every field is schema-checked here before the
 * validators of the operation itself run; an unknown field, op or version is refused, never ignored.
 * Bump PRIV_PROTOCOL_VERSION on any change a peer of the other version would misread.
 */
export const PRIV_PROTOCOL_VERSION = 1;

export { PRIV_HELPER_DEFAULT_SOCKET } from './socket-path.js';

/** A request is a few hundred bytes; anything past this is refused before it is parsed. */
export const PRIV_MAX_FRAME_BYTES = 64 * 1024;

/** Longest string any field may hold (paths are the longest: PATH_MAX). */
const str = z.string().min(1).max(4096);
const netns = z.string().max(64).optional();
const int = z.number().int();

const natBackend = z.enum(['nft', 'iptables']);

/**
 * The arguments of each operation, by name; strict: an extra field is an error. All are PrivOps but
 * `hello`, which only reports the helper's version, protocol and owner (for `banger doctor`).
 */
export const privArgs = {
  hello: z.strictObject({}),
  linkMark: z.strictObject({}),
  ensureBridge: z.strictObject({ name: str, ip: str, prefix: int, netns, adopt: z.boolean().optional() }),
  deleteBridge: z.strictObject({ name: str, netns }),
  createTap: z.strictObject({ name: str, bridge: str, owner: int.optional(), netns }),
  deleteTap: z.strictObject({ name: str, netns }),
  addNat: z.strictObject({ backend: natBackend, table: str, tap: str, guestIp: str, uplink: str, netns }),
  removeNat: z.strictObject({
    backend: natBackend,
    table: str,
    tap: str,
    guestIp: str,
    uplink: str.optional(),
    netns,
  }),
  setIpForward: z.strictObject({ enabled: z.boolean(), netns }),
  attachLoop: z.strictObject({ file: str, readOnly: z.boolean() }),
  detachLoop: z.strictObject({ device: z.string().max(64), backingFile: str }),
  createDmSnapshot: z.strictObject({
    name: str,
    origin: str,
    cow: str,
    sectors: int,
    chunkSectors: int.optional(),
  }),
  removeDm: z.strictObject({ name: str }),
  signalProcess: z.strictObject({ pid: int, startTime: int, arg: str, exe: str.optional(), signal: str }),
  routeResolver: z.strictObject({ link: str, host: str, port: int }),
} as const;

export type PrivOpName = keyof typeof privArgs;
export const PRIV_OPS = Object.keys(privArgs) as PrivOpName[];

export function isPrivOpName(op: string): op is PrivOpName {
  return Object.hasOwn(privArgs, op);
}

const linkRemoval = z.enum(['deleted', 'absent', 'foreign']);

/** What each operation answers; the client checks it too (a helper of another build could differ). */
export const privResults = {
  hello: z.strictObject({ version: z.string().max(64), protocol: int, ownerUid: int }),
  linkMark: z.string().max(128),
  ensureBridge: z.null(),
  deleteBridge: linkRemoval,
  createTap: z.null(),
  deleteTap: linkRemoval,
  addNat: z.null(),
  removeNat: z.null(),
  setIpForward: z.null(),
  attachLoop: z.strictObject({ device: z.string().max(64), backingFile: z.string().max(4096) }),
  detachLoop: z.null(),
  createDmSnapshot: z.string().max(4096),
  removeDm: z.null(),
  signalProcess: z.discriminatedUnion('outcome', [
    z.strictObject({ outcome: z.literal('signalled') }),
    z.strictObject({ outcome: z.literal('gone') }),
    z.strictObject({ outcome: z.literal('refused'), reason: z.string().max(4096) }),
  ]),
  routeResolver: z.null(),
} satisfies Record<PrivOpName, z.ZodType>;

/** The envelope; `v` and `op` are checked separately so each refusal says exactly what was wrong. */
export const privRequestSchema = z.strictObject({
  v: int,
  op: z.string().max(64),
  args: z.record(z.string(), z.unknown()),
});
export type PrivRequest = z.infer<typeof privRequestSchema>;

export const privErrorSchema = z.strictObject({
  code: z.enum(ERROR_CODES),
  message: z.string().max(8192),
  hint: z.string().max(8192).optional(),
});

export const privResponseSchema = z.discriminatedUnion('ok', [
  z.strictObject({ v: int, ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ v: int, ok: z.literal(false), error: privErrorSchema }),
]);
export type PrivResponse = z.infer<typeof privResponseSchema>;
