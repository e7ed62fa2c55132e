import { Mutex } from 'async-mutex';
import { instanceIdPath } from '../../config/paths.js';
import { badRequest } from '../../model/errors.js';
import type { Runner } from '../runner.js';
import { createDmSnapshotDevice, removeDmDevice } from './dm.js';
import { loadInstanceId } from './instance-id.js';
import { linkMark } from './link-mark.js';
import { createTapLink, deleteLink, ensureBridgeLink } from './links.js';
import { attachLoopDevice, detachLoopDevice } from './loop.js';
import { addIptablesNat, removeIptablesNat } from './nat-iptables.js';
import { addNftNat, removeNftNat } from './nat-nft.js';
import { routeResolver } from './resolver.js';
import { signalPid } from './signal.js';
import { setIpForward } from './sysctl.js';
import type { NatBackend, PrivOps } from './types.js';
import {
  validateBridgeName,
  validateDmName,
  validateIfaceName,
  validateIPv4,
  validateLoopDevice,
  validateNetns,
  validatePathUnder,
  validatePrefix,
  validateProcessProof,
  validateSignal,
  validateTableName,
  validateTapName,
} from './validate.js';

export interface InProcessPrivOpsOptions {
  runner: Runner;
  /**
   * banger's state dir: the only tree whose files privileged operations may touch, and where this
   * instance's id (the suffix of its link mark) is kept.
   */
  stateDir: string;
  /** Where the instance id is kept; default `<stateDir>/instance-id`. The root helper keeps its own. */
  instanceIdFile?: string;
  /**
   * The uid a signalled process must run as; default the uid of this process. The root helper passes the
   * owner's uid, so it signals only the owner's VMMs, never a process of root or of another user.
   */
  signalUid?: number;
}

/**
 * PrivOps run in the calling process (which must be root). Validation happens here, at the boundary a root
 * helper would have, so moving to a separate helper changes where it runs, not what it accepts.
 */
export function createInProcessPrivOps({
  runner,
  stateDir,
  instanceIdFile,
  signalUid,
}: InProcessPrivOpsOptions): PrivOps {
  // Bridge and NAT changes read state then act (NAT deletes banger's table once it looks empty), so two
  // of them interleaving could drop a rule just added; one lock keeps each read-then-act whole.
  const net = new Mutex();
  // Read (or made) on the first link operation, so a daemon that never touches the network writes nothing.
  let mark: Promise<string> | undefined;
  const ourMark = (): Promise<string> => {
    mark ??= loadInstanceId(instanceIdFile ?? instanceIdPath(stateDir)).then(linkMark, (err: unknown) => {
      mark = undefined;
      throw err;
    });
    return mark;
  };
  return {
    linkMark: ourMark,
    async ensureBridge(req) {
      const name = validateBridgeName(req.name);
      const checked = {
        name,
        ip: validateIPv4(req.ip),
        prefix: validatePrefix(req.prefix),
        netns: validateNetns(req.netns),
        adopt: req.adopt === true,
      };
      const m = await ourMark();
      await net.runExclusive(() => ensureBridgeLink(runner, checked, m));
    },
    async deleteBridge(req) {
      const name = validateBridgeName(req.name);
      const netns = validateNetns(req.netns);
      const m = await ourMark();
      return net.runExclusive(() => deleteLink(runner, name, 'bridge', m, netns));
    },
    async createTap(req) {
      const checked = {
        name: validateTapName(req.name),
        bridge: validateBridgeName(req.bridge),
        owner: req.owner === undefined ? undefined : validateUid(req.owner),
        netns: validateNetns(req.netns),
      };
      await createTapLink(runner, checked, await ourMark());
    },
    async deleteTap(req) {
      const name = validateTapName(req.name);
      const netns = validateNetns(req.netns);
      return deleteLink(runner, name, 'tun', await ourMark(), netns);
    },
    async addNat(req) {
      const checked = {
        backend: validateBackend(req.backend),
        table: validateTableName(req.table),
        tap: validateTapName(req.tap),
        guestIp: validateIPv4(req.guestIp),
        uplink: validateIfaceName(req.uplink),
        netns: validateNetns(req.netns),
      };
      await net.runExclusive(() =>
        checked.backend === 'nft' ? addNftNat(runner, checked) : addIptablesNat(runner, checked),
      );
    },
    async removeNat(req) {
      const checked = {
        backend: validateBackend(req.backend),
        table: validateTableName(req.table),
        tap: validateTapName(req.tap),
        guestIp: validateIPv4(req.guestIp),
        uplink: req.uplink === undefined ? undefined : validateIfaceName(req.uplink),
        netns: validateNetns(req.netns),
      };
      await net.runExclusive(() =>
        checked.backend === 'nft' ? removeNftNat(runner, checked) : removeIptablesNat(runner, checked),
      );
    },
    async routeResolver(req) {
      await routeResolver(runner, req);
    },
    async setIpForward(req) {
      await setIpForward(runner, req.enabled === true, validateNetns(req.netns));
    },
    async attachLoop(req) {
      const file = validatePathUnder(stateDir, req.file);
      const device = await attachLoopDevice(runner, file, req.readOnly === true);
      return { device, backingFile: file };
    },
    async detachLoop(req) {
      const device = req.device === '' ? '' : validateLoopDevice(req.device);
      await detachLoopDevice(runner, device, validatePathUnder(stateDir, req.backingFile));
    },
    async createDmSnapshot(req) {
      const chunk = req.chunkSectors;
      if (!Number.isInteger(req.sectors) || req.sectors <= 0) throw badRequestValue('sectors', req.sectors);
      if (chunk !== undefined && (!Number.isInteger(chunk) || chunk <= 0 || (chunk & (chunk - 1)) !== 0)) {
        throw badRequestValue('chunkSectors', chunk);
      }
      return createDmSnapshotDevice(runner, {
        name: validateDmName(req.name),
        origin: validateLoopDevice(req.origin),
        cow: validateLoopDevice(req.cow),
        sectors: req.sectors,
        chunkSectors: chunk,
      });
    },
    async removeDm(req) {
      await removeDmDevice(runner, validateDmName(req.name));
    },
    async signalProcess(req) {
      const signal = validateSignal(req.signal);
      return signalPid(validateProcessProof(req), signal, signalUid ?? process.geteuid?.() ?? 0);
    },
  };
}

function validateBackend(backend: NatBackend): NatBackend {
  if (backend !== 'nft' && backend !== 'iptables') throw badRequestValue('NAT backend', backend);
  return backend;
}

function validateUid(uid: number): number {
  if (!Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) throw badRequestValue('owner uid', uid);
  return uid;
}

function badRequestValue(what: string, value: unknown) {
  return badRequest(`invalid ${what} ${JSON.stringify(value)}`);
}
