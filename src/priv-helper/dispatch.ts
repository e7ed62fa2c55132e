import { realpathSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import type { z } from 'zod';
import { attachLoopBeneath, type LoopEntry } from '../host/priv/loop.js';
import {
  isPrivOpName,
  PRIV_OPS,
  PRIV_PROTOCOL_VERSION,
  type PrivOpName,
  type PrivResponse,
  privArgs,
  privRequestSchema,
} from '../host/priv/protocol.js';
import type { PrivOps } from '../host/priv/types.js';
import { validatePathNoSymlinks } from '../host/priv/validate.js';
import { BangerError, badRequest, toBangerError } from '../model/errors.js';

export interface DispatchContext {
  /** The owner's operations (an in-process PrivOps running as root, with the owner's signal uid). */
  ops: PrivOps;
  /** The owner's state dir: the only tree whose files an operation may name. */
  stateDir: string;
  ownerUid: number;
  /** banger's version, reported by `hello`. */
  version: string;
  /** Every attached loop device and the file behind it, as the kernel reports them. */
  listLoops: () => Promise<LoopEntry[]>;
}

/** What one request came to: the response to send and a one-line summary for the log. */
export interface Outcome {
  response: PrivResponse;
  op: string;
  summary: string;
}

/**
 * Parses, checks and runs one request frame. Never throws: every failure becomes an error response with a
 * reason, so a bad request costs its own connection and nothing else. The operation's own validators run
 * inside `ops`; here the envelope and the field types are checked, and what the helper adds to them
 * because it does not trust the owner: paths with no symlink component, taps only for the owner.
 */
export async function dispatchFrame(frame: string, ctx: DispatchContext): Promise<Outcome> {
  let op = '?';
  try {
    let json: unknown;
    try {
      json = JSON.parse(frame);
    } catch (err) {
      throw badRequest(`malformed JSON: ${(err as Error).message}`);
    }
    const env = privRequestSchema.safeParse(json);
    if (!env.success) throw badRequest(`malformed request: ${issues(env.error)}`);
    const req = env.data;
    if (req.v !== PRIV_PROTOCOL_VERSION) {
      throw new BangerError(
        'bad_version',
        `protocol version ${req.v} is not supported (this helper speaks ${PRIV_PROTOCOL_VERSION})`,
        { hint: 'restart the daemon and bangerd-root from the same banger install' },
      );
    }
    if (!isPrivOpName(req.op)) {
      throw new BangerError('unknown_method', `unknown operation ${JSON.stringify(req.op)}`, {
        hint: `known: ${PRIV_OPS.join(' ')}`,
      });
    }
    op = req.op;
    const result = await run(req.op, req.args, ctx);
    const summary =
      op === 'signalProcess' && (result as { outcome: string }).outcome === 'refused'
        ? `refused: ${(result as { reason: string }).reason}`
        : 'ok';
    return { op, summary, response: { v: PRIV_PROTOCOL_VERSION, ok: true, result: result ?? null } };
  } catch (err) {
    const e = toBangerError(err);
    const word = e.code === 'operation_failed' ? 'failed' : 'refused';
    return {
      op,
      summary: `${word}: ${e.message}`,
      response: {
        v: PRIV_PROTOCOL_VERSION,
        ok: false,
        error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) },
      },
    };
  }
}

async function run(op: PrivOpName, raw: unknown, ctx: DispatchContext): Promise<unknown> {
  const args = <K extends PrivOpName>(k: K): z.infer<(typeof privArgs)[K]> => {
    const parsed = privArgs[k].safeParse(raw);
    if (!parsed.success) throw badRequest(`invalid arguments for ${k}: ${issues(parsed.error)}`);
    return parsed.data as z.infer<(typeof privArgs)[K]>;
  };
  const { ops, stateDir, ownerUid } = ctx;
  switch (op) {
    case 'hello':
      args(op);
      return { version: ctx.version, protocol: PRIV_PROTOCOL_VERSION, ownerUid };
    case 'linkMark':
      args(op);
      return ops.linkMark();
    case 'ensureBridge':
      return ops.ensureBridge(args('ensureBridge'));
    case 'deleteBridge':
      return ops.deleteBridge(args('deleteBridge'));
    case 'createTap': {
      const a = args('createTap');
      // The tap's owner is who may open it: only the daemon's owner, never a third user.
      if (a.owner !== undefined && a.owner !== ownerUid) {
        throw badRequest(`refusing a tap for uid ${a.owner}: taps are made for the owner (uid ${ownerUid})`);
      }
      return ops.createTap(a);
    }
    case 'deleteTap':
      return ops.deleteTap(args('deleteTap'));
    case 'addNat':
      return ops.addNat(args('addNat'));
    case 'removeNat':
      return ops.removeNat(args('removeNat'));
    case 'setIpForward': {
      const a = args('setIpForward');
      // Forwarding is a host-wide switch in the host's namespace, and other software (docker, libvirt, a
      // router) may rely on it: the helper turns it on for NAT (as the daemon asks when a VM gets NAT) and
      // never off, so a taken-over daemon cannot cut the host's routing.
      if (!a.enabled) {
        throw badRequest('refusing to turn net.ipv4.ip_forward off: the root helper only turns it on', {
          hint: 'forwarding stays on for other software that may rely on it; turn it off yourself with sysctl',
        });
      }
      return ops.setIpForward(a);
    }
    case 'attachLoop': {
      const a = args('attachLoop');
      // The lstat walk gives the clear refusal; the open itself (openat2, by descriptor) is what makes a
      // component swapped after the walk unable to redirect the attach.
      return attachLoopBeneath(stateDir, validatePathNoSymlinks(stateDir, a.file), a.readOnly);
    }
    case 'detachLoop': {
      const a = args('detachLoop');
      return ops.detachLoop({ ...a, backingFile: validatePathNoSymlinks(stateDir, a.backingFile) });
    }
    case 'createDmSnapshot': {
      const a = args('createDmSnapshot');
      await requireOwnerLoops(ctx, [a.origin, a.cow]);
      return ops.createDmSnapshot(a);
    }
    case 'removeDm':
      return ops.removeDm(args('removeDm'));
    case 'signalProcess':
      return ops.signalProcess(args('signalProcess'));
    case 'routeResolver':
      return ops.routeResolver(args('routeResolver'));
  }
}

/**
 * A snapshot may only stack on loop devices over files in the owner's state dir (the ones attachLoop made
 * for it), never on someone else's loop device, whose file the owner could then reach through the snapshot.
 */
async function requireOwnerLoops(ctx: DispatchContext, devices: string[]): Promise<void> {
  const root = realpathSync(ctx.stateDir);
  const loops = await ctx.listLoops();
  for (const device of devices) {
    const file = loops.find((l) => l.device === device)?.backingFile;
    const rel = file === undefined ? '..' : relative(root, file);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw badRequest(
        `refusing ${JSON.stringify(device)}: not a loop device over a file in the owner's state dir`,
        { hint: 'attach the image and COW files with attachLoop first' },
      );
    }
  }
}

function issues(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
