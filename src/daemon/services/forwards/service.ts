import { rmSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Mutex } from 'async-mutex';
import type { Logger } from 'pino';
import { BangerError, notFound, toBangerError } from '../../../model/errors.js';
import type { VM } from '../../../model/vm.js';
import { vmPaths } from '../vms/index.js';
import type { VmService } from '../vms/service.js';
import { scanGuestListeners } from './auto.js';
import { connectDirect } from './direct-connect.js';
import { connectGuestPort } from './guest-connect.js';
import { boundPort, listenHost, listenHostNear } from './listen.js';
import { relay } from './relay.js';
import { readSaved, removeSaved, writeSaved } from './saved.js';
import { DEFAULT_HOST_ADDRESS, type ForwardSpec, hostEndpoint } from './spec.js';

/** Connections one forward relays at once; past it new ones are reset (each holds a socket in the guest). */
const MAX_CONNECTIONS_PER_FORWARD = 256;
/** Forward traffic marks the VM used at most this often (a store write per chunk would be waste). */
const TOUCH_EVERY_MS = 5_000;
/** How often `--auto` asks the guest which ports listen. */
const AUTO_SCAN_MS = 2_000;
/**
 * After a direct connect failed (a loopback-only guest server, a guest firewall), a forward uses the agent
 * for this long before it tries the direct way again (the server may have moved to 0.0.0.0).
 */
const DIRECT_RETRY_MS = 30_000;

/** One forward as `vm show` and `vm forward --list` report it. */
export interface ForwardInfo {
  hostAddress: string;
  /** The port listened on (the host's pick when 0 was asked, the next free one for an automatic forward). */
  hostPort: number;
  guestPort: number;
  /** Made by `--auto` for a port the guest listens on; removed when it stops listening. */
  auto: boolean;
  /** Connections being relayed now. */
  connections: number;
  /** Set when the forward could not listen again after a daemon restart: it relays nothing. */
  error?: string;
}

export interface ForwardList {
  auto: boolean;
  forwards: ForwardInfo[];
}

/** Listeners made for a `vm create|run --forward` before the VM exists; attached once it runs. */
export interface ForwardReservation {
  attach(vmId: string): Promise<void>;
  release(): void;
}

export interface ForwardService {
  list(vmId: string): ForwardList;
  add(ref: string, specs: ForwardSpec[]): Promise<{ vm: VM } & ForwardList>;
  /** Removes the forwards listening on these host ports; not_found when none does. */
  remove(ref: string, hostPorts: number[]): Promise<{ vm: VM } & ForwardList>;
  setAuto(ref: string, enabled: boolean): Promise<{ vm: VM } & ForwardList>;
  reserve(specs: ForwardSpec[]): Promise<ForwardReservation>;
  /** After reconcile: listens again for the VMs this daemon adopted; drops the saved sets of the others. */
  restore(): Promise<void>;
  /** Daemon stop: stops listening and resets connections, keeps the saved sets for the next daemon. */
  close(): Promise<void>;
}

export interface ForwardServiceDeps {
  vms: Pick<VmService, 'get' | 'list' | 'agent' | 'isLive' | 'touch' | 'onStopped'>;
  vmsDir: string;
  log: Logger;
  autoScanMs?: number;
  /**
   * Where the daemon reaches a VM's TCP ports without the agent: its guest IP when the daemon shares the
   * network namespace of the VM's bridge (the usual case), undefined when it does not (`netns` set: the VMs'
   * network lives elsewhere). Without it every connection goes through the agent.
   */
  directAddress?: (vm: VM) => string | undefined;
}

interface Forward {
  hostAddress: string;
  hostPort: number;
  guestPort: number;
  auto: boolean;
  server?: Server;
  conns: Map<Socket, Duplex | undefined>;
  error?: string;
  /** Unset until attached to a running VM: connections are reset meanwhile. */
  vmId?: string;
  /** Until then, connections go through the agent (a direct connect failed: see DIRECT_RETRY_MS). */
  agentUntil?: number;
}

interface VmForwards {
  auto: boolean;
  forwards: Forward[];
  timer?: NodeJS.Timeout;
}

/** Forwards of host TCP ports to guest ports through each VM's agent, for as long as the VM runs. */
export function createForwardService(deps: ForwardServiceDeps): ForwardService {
  const { vms, log } = deps;
  const byVm = new Map<string, VmForwards>();
  const lock = new Mutex();
  const lastTouch = new Map<string, number>();
  const savedPath = (vmId: string) => vmPaths(deps.vmsDir, vmId).forwards;

  const touch = (vmId: string) => {
    const now = Date.now();
    if (now - (lastTouch.get(vmId) ?? 0) < TOUCH_EVERY_MS) return;
    lastTouch.set(vmId, now);
    try {
      vms.touch(vmId);
    } catch {
      // The VM was deleted meanwhile: nothing to mark.
    }
  };

  /**
   * The guest end of one connection: straight over the bridge when the daemon can route to the guest and
   * the guest's server listens on its own address (every byte through the agent's multiplexed stream costs
   * throughput and latency, under TCG most of all); through the agent otherwise, which also reaches a server
   * bound to the guest's loopback only.
   */
  const connectGuest = async (fwd: Forward, vmId: string): Promise<Duplex> => {
    const address = deps.directAddress?.(vms.get(vmId));
    if (address && (fwd.agentUntil ?? 0) <= Date.now()) {
      try {
        return await connectDirect(address, fwd.guestPort);
      } catch {
        fwd.agentUntil = Date.now() + DIRECT_RETRY_MS;
      }
    }
    return connectGuestPort(await vms.agent(vmId), fwd.guestPort);
  };

  const relayConnection = async (fwd: Forward, sock: Socket) => {
    sock.on('error', () => {}); // reported through the relay (or irrelevant before it)
    const vmId = fwd.vmId;
    if (!vmId || !fwd.server || fwd.conns.size >= MAX_CONNECTIONS_PER_FORWARD) return sock.resetAndDestroy();
    fwd.conns.set(sock, undefined);
    sock.once('close', () => fwd.conns.delete(sock));
    touch(vmId);
    try {
      const guest = await connectGuest(fwd, vmId);
      if (sock.destroyed || !fwd.conns.has(sock)) return void guest.destroy();
      fwd.conns.set(sock, guest);
      relay(sock, guest, () => touch(vmId));
    } catch (err) {
      // Info, not debug: a user whose client was reset finds the guest's reason here.
      log.info(
        { vm: vmId, guestPort: fwd.guestPort, err: toBangerError(err).message },
        'forward connect failed',
      );
      if (!sock.destroyed) sock.resetAndDestroy();
    }
  };
  const onConnection = (fwd: Forward) => (sock: Socket) => void relayConnection(fwd, sock);

  const closeForward = (fwd: Forward) => {
    fwd.server?.close();
    fwd.server = undefined;
    for (const [sock, guest] of fwd.conns) {
      guest?.destroy();
      if (!sock.destroyed) sock.resetAndDestroy();
    }
    fwd.conns.clear();
  };

  const open = async (spec: ForwardSpec, auto: boolean, near = false): Promise<Forward> => {
    const fwd: Forward = { ...spec, auto, conns: new Map() };
    const listen = near ? listenHostNear : listenHost;
    fwd.server = await listen(spec.hostAddress, spec.hostPort, onConnection(fwd));
    fwd.hostPort = boundPort(fwd.server);
    return fwd;
  };

  /** Opens every spec or none. */
  const openAll = async (specs: ForwardSpec[]): Promise<Forward[]> => {
    const opened: Forward[] = [];
    try {
      for (const spec of specs) opened.push(await open(spec, false));
    } catch (err) {
      for (const f of opened) closeForward(f);
      throw err;
    }
    return opened;
  };

  const info = (f: Forward): ForwardInfo => ({
    hostAddress: f.hostAddress,
    hostPort: f.hostPort,
    guestPort: f.guestPort,
    auto: f.auto,
    connections: f.conns.size,
    ...(f.error !== undefined && { error: f.error }),
  });

  const list = (vmId: string): ForwardList => {
    const state = byVm.get(vmId);
    if (!state) return { auto: false, forwards: [] };
    const forwards = state.forwards.map(info).sort((a, b) => a.hostPort - b.hostPort);
    return { auto: state.auto, forwards };
  };

  const persist = async (vmId: string) => {
    const state = byVm.get(vmId);
    const path = savedPath(vmId);
    if (!state || (!state.auto && state.forwards.length === 0)) return removeSaved(path);
    await writeSaved(path, {
      auto: state.auto,
      forwards: state.forwards.map((f) => ({
        hostAddress: f.hostAddress,
        hostPort: f.hostPort,
        guestPort: f.guestPort,
        auto: f.auto,
      })),
    });
  };

  const teardownVm = (vmId: string) => {
    const state = byVm.get(vmId);
    if (!state) return;
    byVm.delete(vmId);
    lastTouch.delete(vmId);
    clearTimeout(state.timer);
    for (const f of state.forwards) closeForward(f);
    log.info({ vm: vmId, forwards: state.forwards.length }, 'forwards closed');
  };

  const stateOf = (vmId: string): VmForwards => {
    let state = byVm.get(vmId);
    if (!state) {
      state = { auto: false, forwards: [] };
      byVm.set(vmId, state);
    }
    return state;
  };

  /** Registers forwards with a VM; false (and they are closed) when it no longer runs. */
  const attach = (vmId: string, forwards: Forward[]): boolean => {
    if (!vms.isLive(vmId)) {
      for (const f of forwards) closeForward(f);
      return false;
    }
    for (const f of forwards) f.vmId = vmId;
    stateOf(vmId).forwards.push(...forwards);
    return true;
  };

  const runningVm = (ref: string): VM => {
    const vm = vms.get(ref);
    if (!vms.isLive(vm.id))
      throw new BangerError('not_running', `VM ${vm.name} is not running`, {
        hint: `banger vm start ${vm.name}`,
      });
    return vm;
  };

  const scan = async (vmId: string) => {
    const state = byVm.get(vmId);
    if (!state?.auto) return;
    const listening = await scanGuestListeners(await vms.agent(vmId));
    let changed = false;
    for (const port of listening) {
      if (state.forwards.some((f) => f.guestPort === port)) continue;
      try {
        const fwd = await open(
          { hostAddress: DEFAULT_HOST_ADDRESS, hostPort: port, guestPort: port },
          true,
          true,
        );
        if (byVm.get(vmId) !== state) return closeForward(fwd); // the VM stopped meanwhile
        fwd.vmId = vmId;
        state.forwards.push(fwd);
        changed = true;
        log.info(
          { vm: vmId, guestPort: port, host: hostEndpoint(fwd.hostAddress, fwd.hostPort) },
          'auto forward',
        );
      } catch (err) {
        log.warn({ vm: vmId, guestPort: port, err: toBangerError(err).message }, 'auto forward failed');
      }
    }
    for (const f of state.forwards.filter((x) => x.auto && !listening.has(x.guestPort))) {
      closeForward(f);
      state.forwards.splice(state.forwards.indexOf(f), 1);
      changed = true;
    }
    if (changed) await persist(vmId);
  };

  const scheduleScan = (vmId: string) => {
    const state = byVm.get(vmId);
    if (!state?.auto) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      lock
        .runExclusive(() => scan(vmId))
        .catch((err) => log.debug({ vm: vmId, err: toBangerError(err).message }, 'auto forward scan failed'))
        .finally(() => scheduleScan(vmId));
    }, deps.autoScanMs ?? AUTO_SCAN_MS);
    state.timer.unref();
  };

  vms.onStopped((vmId) => {
    teardownVm(vmId);
    // Gone before the stop returns: a late removal could delete the set of the VM's next run.
    rmSync(savedPath(vmId), { force: true });
  });

  return {
    list,

    add: (ref, specs) =>
      lock.runExclusive(async () => {
        const vm = runningVm(ref);
        const opened = await openAll(specs);
        if (!attach(vm.id, opened)) runningVm(ref); // throws not_running
        await persist(vm.id);
        return { vm, ...list(vm.id) };
      }),

    remove: (ref, hostPorts) =>
      lock.runExclusive(async () => {
        const vm = vms.get(ref);
        const state = byVm.get(vm.id);
        const doomed = state?.forwards.filter((f) => hostPorts.includes(f.hostPort)) ?? [];
        if (!state || doomed.length === 0)
          throw notFound(`VM ${vm.name} has no forward on host port ${hostPorts.join(', ')}`, {
            hint: `banger vm forward --list ${vm.name}`,
          });
        for (const f of doomed) {
          closeForward(f);
          state.forwards.splice(state.forwards.indexOf(f), 1);
        }
        await persist(vm.id);
        return { vm, ...list(vm.id) };
      }),

    async setAuto(ref, enabled) {
      const vm = enabled ? runningVm(ref) : vms.get(ref);
      await lock.runExclusive(async () => {
        if (!enabled) {
          const state = byVm.get(vm.id);
          if (!state) return;
          state.auto = false;
          clearTimeout(state.timer);
          for (const f of state.forwards.filter((x) => x.auto)) closeForward(f);
          state.forwards = state.forwards.filter((x) => !x.auto);
          await persist(vm.id);
          return;
        }
        stateOf(vm.id).auto = true;
        await persist(vm.id);
        await scan(vm.id); // the reply lists what is forwarded now
      });
      scheduleScan(vm.id);
      return { vm, ...list(vm.id) };
    },

    async reserve(specs) {
      const opened = await openAll(specs);
      return {
        attach: (vmId) =>
          lock.runExclusive(async () => {
            if (!attach(vmId, opened)) return;
            await persist(vmId);
          }),
        release: () => {
          for (const f of opened) if (!f.vmId) closeForward(f);
        },
      };
    },

    restore: () =>
      lock.runExclusive(async () => {
        for (const vm of vms.list()) {
          const saved = await readSaved(savedPath(vm.id));
          if (saved === undefined) continue;
          if (!vms.isLive(vm.id)) {
            await removeSaved(savedPath(vm.id));
            continue;
          }
          if (saved === 'damaged') {
            log.warn({ vm: vm.id }, 'forwards.json does not parse; its forwards are gone');
            await removeSaved(savedPath(vm.id));
            continue;
          }
          const state = stateOf(vm.id);
          state.auto = saved.auto;
          for (const s of saved.forwards) {
            try {
              const fwd = await open(s, s.auto);
              fwd.vmId = vm.id;
              state.forwards.push(fwd);
            } catch (err) {
              // An automatic one comes back through the next scan (on another port if need be).
              if (s.auto) continue;
              const error = `not restored after a daemon restart: ${toBangerError(err).message}`;
              state.forwards.push({ ...s, conns: new Map(), vmId: vm.id, error });
              log.warn(
                { vm: vm.id, host: hostEndpoint(s.hostAddress, s.hostPort), err: error },
                'forward lost',
              );
            }
          }
          await persist(vm.id);
          if (state.auto) scheduleScan(vm.id);
          log.info({ vm: vm.id, forwards: state.forwards.length, auto: state.auto }, 'forwards restored');
        }
      }),

    async close() {
      for (const vmId of [...byVm.keys()]) teardownVm(vmId);
    },
  };
}
