import { mkdir } from 'node:fs/promises';
import { Mutex } from 'async-mutex';
import { BangerError, badRequest, operationFailed, toBangerError } from '../../../model/errors.js';
import type { Image } from '../../../model/image.js';
import { validateVmName } from '../../../model/names.js';
import { parseSize } from '../../../model/sizes.js';
import type { Snapshot } from '../../../model/snapshot.js';
import { type VM, vmmUp } from '../../../model/vm.js';
import { ensureSshKey, forgetHost, pinHostKey, sshOptions } from '../../../ssh/index.js';
import { bootstrapTools, copyIn, type GuestExec, WORKSPACE_GUEST_DIR } from '../workspaces/index.js';
import {
  applySpecChange,
  type GuestPort,
  guestPorts,
  PRUNABLE_STATES,
  renderSshConfig,
  type SpecChange,
  writeSshConfig,
} from './admin.js';
import { ensureVmDisks } from './disks.js';
import { GUEST_HOST_KEY, hasSshd, readHostKey, waitForSshd } from './guest-setup.js';
import { withHttpLinks } from './http-probe.js';
import type { IdentityLedger } from './ledger.js';
import type { LiveVm } from './live.js';
import { generateVmName, newVmId } from './names.js';
import type { AgentPort, ExecHandle, ExecIo, ExecRequest, VmmInstancePort } from './ports.js';

import { type ReconcileReport, reconcileVms } from './reconcile.js';
import { resolveVm } from './resolve.js';
import { type RunRequest, type RunResult, runVm } from './run.js';
import { vmPaths } from './run-dir.js';
import { DISK_HINT, inspectRunWorkspace } from './run-workspace.js';
import { startVm } from './start.js';
import { destroyVm, ledgerFor, markDeleting, releaseRuntime, stopLive } from './stop.js';
import type { CreateVmRequest, OpOptions, VmServiceDeps } from './types.js';
import { warmTemplateKey } from './warm-key.js';
import { pruneWorkTemplates } from './work-template.js';

/** The VM service: lifecycle, exec through the agent, and reconcile at daemon start. */
export interface VmService {
  list(): VM[];
  get(ref: string): VM;
  create(req: CreateVmRequest, opts?: OpOptions): Promise<VM>;
  start(ref: string, opts?: OpOptions): Promise<VM>;
  /**
   * force kills the VMM at once, with `signal` (TERM, KILL, INT, HUP, QUIT) or SIGKILL. `reason` is recorded
   * as the VM's stopReason when banger stops it on its own (the idle rule).
   */
  stop(ref: string, opts?: { force?: boolean; signal?: NodeJS.Signals; reason?: string }): Promise<VM>;
  /**
   * Records a user action on the VM (its lastTouchedAt, the idle rule's clock). exec, ssh, ports, workspace
   * copies and start touch on their own; port forwarding calls it for the traffic it carries.
   */
  touch(ref: string): void;
  /** A running VM's VMM process and agent, for stats and health; not_running otherwise. */
  live(ref: string): LiveView;
  /** Ids of the VMs this daemon runs (started or adopted). */
  liveIds(): string[];
  restart(ref: string, opts?: OpOptions): Promise<VM>;
  /** Freezes a running VM's vCPUs (memory, disks, tap and IP stay); the VM shows as `paused`. */
  pause(ref: string): Promise<VM>;
  /** Lets a paused VM run again; counts as a use (the idle clock restarts). */
  resume(ref: string): Promise<VM>;
  /**
   * Runs fn on a running or paused VM with its vCPUs paused (paused for fn and resumed after when it was
   * running), under the VM's lock, so no stop, delete or other pause runs meanwhile (snapshots).
   */
  withPaused<T>(ref: string, fn: (vm: VM, instance: VmmInstancePort) => Promise<T>): Promise<T>;
  /**
   * A new VM from a (verified) snapshot: its own name, IP, tap, MAC and overlays over the snapshot's disks,
   * the snapshot's memory restored and the new identity applied. Any failure deletes the new VM.
   */
  fork(snapshot: Snapshot, req: { name?: string }, opts?: OpOptions): Promise<VM>;
  /**
   * Deletes a VM. It answers once the VM is marked `deleting` (durably: reconcile finishes it after a crash)
   * and its VMM is killed when `wait` is false; the rest of the teardown (taps, leases, disks, directory,
   * row) then goes on in the background. By default (wait) it answers after all of it. The name is free
   * once the row is gone.
   */
  delete(ref: string, opts?: { wait?: boolean }): Promise<void>;
  /**
   * `vm run` as one operation: create, start, workspace copy-in, then the command (or nothing, for the
   * caller's interactive step); `rm` deletes the VM afterwards but keeps one whose boot failed
   * (a BootFailedError saying so).
   */
  run(req: RunRequest, io: ExecIo, opts?: OpOptions): Promise<RunResult>;
  /** Runs a command in the guest through its agent and returns how it ended. */
  exec(
    ref: string,
    req: ExecRequest,
    io: ExecIo,
    opts?: OpOptions,
  ): Promise<{ exitCode: number | null; signal: string | null }>;
  /** How to reach the guest with ssh: argv (ssh and its options, then the target) and its netns. */
  sshCommand(ref: string, opts?: OpOptions): Promise<{ argv: string[]; netns?: string }>;
  /** The guest's console log. */
  logPath(ref: string): string;
  reconcile(): Promise<ReconcileReport>;
  /**
   * Removes work-disk templates and spares no image in the store can use (removed or rebuilt images):
   * at reconcile, and after an image is removed or promoted. Returns the names removed.
   */
  pruneWorkTemplates(): Promise<string[]>;
  /**
   * Resolves when the teardowns under way now are done (failed ones too): what removes an image or a
   * snapshot waits for them, as a `deleting` VM still holds its disks over them.
   */
  settleDeletes(): Promise<void>;
  /** Deletes every VM that is not running (created, stopped, error); only those of `ids` when given. */
  prune(ids?: string[]): Promise<VM[]>;
  /** Changes a stopped VM's spec; the work disk only grows. Takes effect at the next start. */
  set(ref: string, change: SpecChange): Promise<VM>;
  /** The guest's listening ports, through its agent. */
  ports(ref: string, opts?: OpOptions): Promise<{ vm: VM; ports: GuestPort[] }>;
  /** Rewrites banger's ssh_config (a block per VM with an address) and returns it. */
  sshConfig(): Promise<{ path: string; text: string }>;
  /** Drops agent connections; VMs keep running for the next daemon to adopt. */
  close(): Promise<void>;
  /** A running VM's agent connection (made again when it dropped); not_running otherwise. */
  agent(ref: string, opts?: OpOptions): Promise<AgentPort>;
  /** True while this daemon runs (or adopted) the VM's VMM. */
  isLive(id: string): boolean;
  /**
   * Calls listener (synchronously) each time a VM stops running here (stop, delete, its VMM's exit); not at
   * daemon stop, where VMs keep running. Returns the unsubscribe.
   */
  onStopped(listener: (vmId: string) => void): () => void;
}

/** What the stats service reads of a running VM. */
export interface LiveView {
  vm: VM;
  /** The VMM process (pid and start time name it for good). */
  pid: number;
  startTime: number;
  /** The agent connection, reconnected when it dropped. */
  agent(signal?: AbortSignal): Promise<AgentPort>;
  /** True while a command runs in it through the agent (exec, vm run's command, a workspace copy). */
  busy: boolean;
  /** Its vCPUs are frozen (`vm pause`): its agent cannot answer, and it is idle by definition. */
  paused: boolean;
}

/** The refusal for a VM whose guest cannot answer: stopped, or paused (with the verb that helps). */
function notRunning(vm: VM): BangerError {
  if (vm.state === 'paused')
    return new BangerError('not_running', `VM ${vm.name} is paused`, { hint: `banger vm resume ${vm.name}` });
  return new BangerError('not_running', `VM ${vm.name} is not running`, {
    hint: `banger vm start ${vm.name}`,
  });
}

const AGENT_RECONNECT_MS = 15_000;
/** How long `vm ssh` waits for a guest's sshd to listen (a VM just started may still be booting it). */
const SSHD_WAIT_MS = 60_000;

export function createVmService(deps: VmServiceDeps): VmService {
  const { store, config } = deps;
  const live = new Map<string, LiveVm>();
  /** Commands running through each VM's agent: a VM in use is never idle, however long the command. */
  const running = new Map<string, number>();
  const locks = new Map<string, Mutex>();
  const locked = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    let lock = locks.get(id);
    if (!lock) {
      lock = new Mutex();
      locks.set(id, lock);
    }
    return lock.runExclusive(fn);
  };
  const stoppedListeners = new Set<(vmId: string) => void>();
  /** The VM no longer runs here: listeners (forwards) drop what they hold for it. */
  const forget = (id: string) => {
    if (!live.delete(id)) return;
    for (const listener of stoppedListeners) {
      try {
        listener(id);
      } catch (err) {
        deps.log.warn({ vm: id, err: toBangerError(err).message }, 'a VM stop listener failed');
      }
    }
  };
  const fresh = (id: string): VM => {
    const vm = store.vms.findById(id);
    if (!vm) throw new BangerError('not_found', `VM ${id} was deleted`);
    return vm;
  };
  /** The VM, unless a delete of it is under way or was cut short (then only a delete may touch it). */
  const notDeleting = (vm: VM): VM => {
    if (vm.state !== 'deleting') return vm;
    throw new BangerError('bad_request', `VM ${vm.name} is being deleted`, {
      hint: `banger vm delete ${vm.name}`,
    });
  };

  /**
   * The part of a delete the caller waits for (it holds the VM's lock): the intent, durably (the marker file
   * reconcile finishes from, then the `deleting` state `vm list` shows), and the VMM killed: nothing runs.
   */
  const beginDelete = async (id: string): Promise<void> => {
    await markDeleting(deps, fresh(id));
    store.vms.update(id, 'deleting', fresh(id).runtime);
    const entry = live.get(id);
    if (entry) {
      entry.stopping = true; // the exit watcher leaves the teardown to us
      await entry.instance.kill();
      await Promise.resolve(entry.agent?.close()).catch(() => {});
      forget(id);
      await deps.checkpoint?.('stopped-vmm', id);
    }
  };
  /** The rest: every identity undone (taps, NAT, leases, disks), the directory and the row. */
  const finishDelete = async (id: string): Promise<void> => {
    const ip = fresh(id).runtime.guestIp;
    await destroyVm(deps, fresh(id));
    if (ip && deps.ssh) await forgetHost(deps.runner, deps.ssh.knownHostsPath, ip);
  };
  /** Deletes a VM to the end; the caller holds its lock. */
  const deleteHeld = async (id: string): Promise<void> => {
    await beginDelete(id);
    await finishDelete(id);
  };
  /** Teardowns that went on after their `delete` answered, by VM id: `--wait` and close() wait for them. */
  const tearingDown = new Map<string, Promise<void>>();

  /** A VM whose VMM exits on its own (poweroff inside, crash) is torn down and marked accordingly. */
  const watch = (vm: VM, instance: VmmInstancePort, ledger: IdentityLedger): LiveVm => {
    const entry: LiveVm = { instance, ledger };
    live.set(vm.id, entry);
    void instance.exited.then(async (exit) => {
      if (entry.stopping || live.get(vm.id) !== entry) return;
      forget(vm.id);
      await Promise.resolve(entry.agent?.close()).catch(() => {});
      const clean = exit.code === 0;
      await locked(vm.id, async () => {
        const current = store.vms.findById(vm.id);
        if (!current) return;
        await releaseRuntime(
          deps,
          current,
          ledger,
          clean ? 'stopped' : 'error',
          clean ? undefined : `VMM exited (${exit.signal ?? `code ${exit.code}`})`,
        );
      }).catch((err) =>
        deps.log.error({ vm: vm.id, err: toBangerError(err).message }, 'cleanup after exit failed'),
      );
    });
    return entry;
  };

  const doStart = async (vm: VM, opts: OpOptions): Promise<VM> => {
    if (live.has(vm.id)) throw badRequest(`VM ${vm.name} is already running`);
    const entry = await startVm(deps, vm, opts);
    const watched = watch(vm, entry.instance, entry.ledger);
    watched.agent = entry.agent;
    store.vms.touch(vm.id);
    await refreshSshConfig();
    await opts.afterStart?.(fresh(vm.id));
    return fresh(vm.id);
  };

  const agentOf = async (vm: VM, signal?: AbortSignal) => {
    const entry = live.get(vm.id);
    if (!entry || vm.state !== 'running') throw notRunning(vm);
    // A connection dropped (a guest that broke a read limit, an agent restarted) is replaced.
    if (entry.agent?.closed) entry.agent = undefined;
    entry.agent ??= await deps.guest.waitForAgent(entry.instance.agentEndpoint, {
      timeoutMs: AGENT_RECONNECT_MS,
      signal,
    });
    return entry.agent;
  };

  /** Keeps banger's ssh_config naming every VM's address; best-effort, never fails a lifecycle call. */
  const refreshSshConfig = async () => {
    if (!deps.ssh?.configPath) return;
    await writeSshConfig(deps.ssh.configPath, renderSshConfig(store.vms.list(), deps.ssh)).catch((err) =>
      deps.log.warn({ err: toBangerError(err).message }, 'writing ssh_config failed'),
    );
  };

  /**
   * The first half of a create: a given name is checked before the (possibly long) image pull; a generated
   * one is picked after it, with no await between the pick and the insert, so concurrent creates never draw
   * the same name.
   */
  const admit = async (req: CreateVmRequest, opts: OpOptions): Promise<{ vm: VM; image: Image }> => {
    if (req.name) validateVmName(req.name);
    if (req.name && store.vms.findByName(req.name))
      throw new BangerError('already_exists', `VM ${JSON.stringify(req.name)} already exists`);
    opts.progress?.({ kind: 'stage', stage: 'image' });
    const image = await deps.images.ensure(req.image ?? config.default_image_name, opts);
    const name = req.name ?? generateVmName((n) => store.vms.findByName(n) !== undefined);
    const defaults = config.vm_defaults;
    const now = new Date().toISOString();
    const id = newVmId();
    const vm: VM = {
      id,
      name,
      imageId: image.id,
      ...(req.createdBy === undefined ? {} : { createdBy: req.createdBy }),
      state: 'created',
      spec: {
        vcpu: req.vcpu ?? defaults.vcpu,
        memoryMib: req.memoryMib ?? defaults.memory_mib,
        diskSizeBytes: req.diskSizeBytes ?? parseSize(defaults.disk_size),
        systemOverlaySizeBytes: req.systemOverlaySizeBytes ?? parseSize(defaults.system_overlay_size),
        nat: req.nat ?? false,
      },
      runtime: { identities: [], vmDir: vmPaths(deps.vmsDir, id).dir },
      createdAt: now,
      updatedAt: now,
      lastTouchedAt: now,
    };
    store.vms.insert(vm);
    await mkdir(vmPaths(deps.vmsDir, id).run, { recursive: true, mode: 0o700 });
    return { vm, image };
  };

  /** The row of a VM forked from a snapshot: its size is the snapshot's (its memory and disks were made for it). */
  const admitFork = async (snapshot: Snapshot, req: { name?: string; createdBy?: string | undefined }) => {
    if (req.name) validateVmName(req.name);
    if (req.name && store.vms.findByName(req.name))
      throw new BangerError('already_exists', `VM ${JSON.stringify(req.name)} already exists`);
    if (!store.images.findById(snapshot.source.imageId))
      throw badRequest(`image ${snapshot.source.imageId} of snapshot ${snapshot.name} no longer exists`);
    const name = req.name ?? generateVmName((n) => store.vms.findByName(n) !== undefined);
    const now = new Date().toISOString();
    const id = newVmId();
    const vm: VM = {
      id,
      name,
      imageId: snapshot.source.imageId,
      ...(req.createdBy === undefined ? {} : { createdBy: req.createdBy }),
      state: 'created',
      spec: snapshot.spec,
      runtime: {
        identities: [],
        vmDir: vmPaths(deps.vmsDir, id).dir,
        forkOf: { snapshotId: snapshot.id, snapshotName: snapshot.name },
      },
      createdAt: now,
      updatedAt: now,
      lastTouchedAt: now,
    };
    store.vms.insert(vm);
    await mkdir(vmPaths(deps.vmsDir, id).run, { recursive: true, mode: 0o700 });
    return vm;
  };

  /**
   * `vm run`'s first half: a fork of the named snapshot (--from-snapshot), else a new VM of the image that
   * becomes a fork of its warm template when one is ready for the same key. `key` is what warmUp makes later.
   */
  const admitRun = async (
    req: RunRequest,
    opts: OpOptions,
  ): Promise<{ vm: VM; restore?: Snapshot; key?: string }> => {
    const restores = deps.restores?.();
    if (req.fromSnapshot !== undefined) {
      if (!restores) throw badRequest('this daemon cannot restore snapshots');
      const fixed = (
        ['image', 'vcpu', 'memoryMib', 'diskSizeBytes', 'systemOverlaySizeBytes'] as const
      ).filter((k) => req.create[k] !== undefined);
      if (fixed.length > 0 || req.create.nat)
        throw badRequest(
          '--from-snapshot takes the image, size and network of the snapshot: drop --image, --vcpu, --memory, --disk-size, --system-overlay-size and --nat',
        );
      const snapshot = await restores.snapshot(req.fromSnapshot, opts);
      return { vm: await admitFork(snapshot, req.create), restore: snapshot };
    }
    const { vm, image } = await admit(req.create, opts);
    // Only QEMU restores snapshots today (forRestore refuses the rest): no template another VMM cannot use.
    if (req.cold || !config.warm_templates || !restores || (await deps.vmm()).kind !== 'qemu') return { vm };
    let key: string;
    try {
      key = await warmTemplateKey(deps, image, vm.spec, opts);
    } catch (err) {
      // The boot resolves the same kernel and says what is wrong with it; the warm path only steps aside.
      deps.log.warn({ vm: vm.id, err: toBangerError(err).message }, 'no warm template key');
      return { vm };
    }
    const template = await restores.template(key);
    if (!template) return { vm, key };
    store.vms.update(vm.id, vm.state, {
      ...vm.runtime,
      forkOf: { snapshotId: template.id, snapshotName: template.name },
    });
    return { vm: fresh(vm.id), restore: template, key };
  };

  /** Starts an admitted VM (the second half of a create). */
  const boot = (id: string, opts: OpOptions): Promise<VM> => locked(id, () => doStart(fresh(id), opts));

  return {
    list: () => store.vms.list(),
    get: (ref) => resolveVm(store.vms, ref),

    async create(req, opts = {}) {
      const { vm, image } = await admit(req, opts);
      try {
        if (req.noStart) {
          // Disks now, so a created VM is ready to boot and `create` shows the cost of copy-on-write.
          opts.progress?.({ kind: 'stage', stage: 'disks' });
          await locked(vm.id, async () => {
            const ledger = await ledgerFor(deps, vm);
            try {
              await ensureVmDisks(deps, vm, image, ledger, (await deps.vmm()).kind);
            } catch (err) {
              const current = fresh(vm.id);
              store.vms.update(vm.id, 'error', { ...current.runtime, lastError: toBangerError(err).message });
              throw err;
            }
          });
          return fresh(vm.id);
        }
        return await boot(vm.id, opts);
      } catch (err) {
        // Cancelled (Ctrl-C, the client went away): the VM never served anyone, so nothing of it is kept. A
        // boot that failed on its own is kept, in state error, for its console log.
        if (opts.signal?.aborted)
          await this.delete(vm.id).catch((e: unknown) =>
            deps.log.warn({ vm: vm.id, err: toBangerError(e).message }, 'removing a cancelled VM failed'),
          );
        throw err;
      }
    },

    run(req, io, opts = {}) {
      /** The warm template key of this run's VM (a cold run makes the template for it afterwards). */
      let key: string | undefined;
      return runVm(
        {
          admit: async (r, o) => {
            const admitted = await admitRun(r, o);
            key = admitted.key;
            return admitted;
          },
          boot,
          dropTemplate: async (t) => deps.restores?.()?.drop(t),
          warmUp: (vm) => {
            if (key) deps.restores?.()?.warmUp(key, { imageId: vm.imageId, spec: vm.spec });
          },
          inspectWorkspace: (r) => inspectRunWorkspace(deps, r),
          copyWorkspace: (id, source, o) =>
            copyIn(deps.runner, execIn(this, id, o), source, deps.workspaceDir ?? WORKSPACE_GUEST_DIR, {
              diskHint: DISK_HINT,
              recordDir: vmPaths(deps.vmsDir, id).dir,
            }),
          bootstrap: (id, source, mode) =>
            bootstrapTools(execIn(this, id, {}), source, deps.workspaceDir ?? WORKSPACE_GUEST_DIR, mode),
          exec: (id, r, i, o) => this.exec(id, r, i, o),
          delete: (id) => this.delete(id),
        },
        req,
        io,
        opts,
      );
    },

    async start(ref, opts = {}) {
      const vm = resolveVm(store.vms, ref);
      return locked(vm.id, async () => {
        const current = notDeleting(fresh(vm.id));
        if (current.state === 'running' && live.has(vm.id)) return current;
        if (current.state === 'paused' && live.has(vm.id))
          throw badRequest(`VM ${vm.name} is paused`, { hint: `banger vm resume ${vm.name}` });
        return doStart(current, opts);
      });
    },

    async stop(ref, opts = {}) {
      const vm = resolveVm(store.vms, ref);
      return locked(vm.id, async () => {
        const current = notDeleting(fresh(vm.id));
        const entry = live.get(vm.id);
        if (entry) {
          // A frozen guest cannot power itself off: it runs again for the graceful path (a kill needs no guest).
          if (current.state === 'paused' && !opts.force)
            await entry.instance.resume().catch((err: unknown) => {
              deps.log.warn({ vm: vm.id, err: toBangerError(err).message }, 'resume before stop failed');
            });
          await stopLive(deps, current, entry, opts.force ?? false, opts.signal);
          forget(vm.id);
          if (opts.reason) {
            const after = fresh(vm.id);
            store.vms.update(vm.id, after.state, { ...after.runtime, stopReason: opts.reason });
          }
        } else if ((await ledgerFor(deps, current)).runtimeIdentities().length > 0) {
          // Recorded but not live here (a start that failed half-way): undo from the record.
          await releaseRuntime(deps, current, await ledgerFor(deps, current));
        } else if (vmmUp(current.state)) {
          store.vms.update(vm.id, 'stopped', { ...current.runtime, lastError: undefined });
        }
        return fresh(vm.id);
      });
    },

    async restart(ref, opts = {}) {
      const vm = await this.stop(ref);
      return this.start(vm.id, opts);
    },

    async pause(ref) {
      const vm = resolveVm(store.vms, ref);
      return locked(vm.id, async () => {
        const current = fresh(vm.id);
        const entry = live.get(vm.id);
        if (current.state === 'paused' && entry) return current;
        if (!entry || current.state !== 'running') throw notRunning(current);
        // The VMM first, then the store: reconcile reads the VMM's own state, so a crash between the two
        // is corrected at the next daemon start.
        await entry.instance.pause();
        store.vms.update(vm.id, 'paused', current.runtime);
        return fresh(vm.id);
      });
    },

    async withPaused(ref, fn) {
      const vm = resolveVm(store.vms, ref);
      return locked(vm.id, async () => {
        const current = fresh(vm.id);
        const entry = live.get(vm.id);
        if (!entry || !vmmUp(current.state)) throw notRunning(current);
        const wasRunning = current.state === 'running';
        if (wasRunning) await entry.instance.pause();
        try {
          return await fn(current, entry.instance);
        } finally {
          if (wasRunning)
            await entry.instance.resume().catch((err: unknown) => {
              // Left paused, and said so: the store follows the VMM.
              store.vms.update(vm.id, 'paused', fresh(vm.id).runtime);
              deps.log.error({ vm: vm.id, err: toBangerError(err).message }, 'resume after a pause failed');
            });
        }
      });
    },

    async fork(snapshot, req, opts = {}) {
      const { id } = await admitFork(snapshot, req);
      try {
        return await boot(id, { ...opts, restore: snapshot, waitForSsh: false });
      } catch (err) {
        // A fork that did not come up serves no one: nothing of it is kept (its error is the answer).
        await this.delete(id).catch((e: unknown) =>
          deps.log.warn({ vm: id, err: toBangerError(e).message }, 'removing a failed fork failed'),
        );
        throw err;
      }
    },

    async resume(ref) {
      const vm = resolveVm(store.vms, ref);
      return locked(vm.id, async () => {
        const current = fresh(vm.id);
        const entry = live.get(vm.id);
        if (current.state === 'running' && entry) return current;
        if (!entry || current.state !== 'paused') throw notRunning(current);
        await entry.instance.resume();
        store.vms.update(vm.id, 'running', current.runtime);
        store.vms.touch(vm.id);
        return fresh(vm.id);
      });
    },

    async delete(ref, opts = {}) {
      const vm = resolveVm(store.vms, ref);
      let teardown = tearingDown.get(vm.id);
      if (!teardown) {
        let marked = () => {};
        const answered = new Promise<void>((resolve) => {
          marked = resolve;
        });
        teardown = locked(vm.id, async () => {
          await beginDelete(vm.id);
          marked();
          await finishDelete(vm.id);
          locks.delete(vm.id);
          await refreshSshConfig();
        }).finally(() => tearingDown.delete(vm.id));
        tearingDown.set(vm.id, teardown);
        // Whoever does not wait for the teardown still hears of its failure: the log says what is left,
        // and the VM stays `deleting` for a later delete or the next start to finish.
        teardown.catch((err: unknown) =>
          deps.log.error({ vm: vm.id, err: toBangerError(err).message }, 'tearing a deleted VM down failed'),
        );
        await Promise.race([answered, teardown]);
      }
      if (opts.wait ?? true) await teardown;
    },

    async prune(ids) {
      const wanted = ids && new Set(ids);
      const prunable = (v: VM | undefined): v is VM =>
        v !== undefined && PRUNABLE_STATES.includes(v.state) && !live.has(v.id);
      const doomed = store.vms.list().filter((v) => prunable(v) && (!wanted || wanted.has(v.id)));
      const deleted: VM[] = [];
      for (const vm of doomed) {
        // The check is repeated under the VM's lock: one started since the listing is kept.
        const gone = await locked(vm.id, async () => {
          const current = store.vms.findById(vm.id);
          if (!prunable(current)) return undefined;
          await deleteHeld(vm.id);
          return current;
        });
        if (!gone) continue;
        locks.delete(vm.id);
        deleted.push(gone);
      }
      if (deleted.length > 0) await refreshSshConfig();
      return deleted;
    },

    async set(ref, change) {
      const vm = resolveVm(store.vms, ref);
      return locked(vm.id, async () => {
        const current = fresh(vm.id);
        return applySpecChange(deps, live.has(vm.id) ? { ...current, state: 'running' } : current, change);
      });
    },

    touch(ref) {
      store.vms.touch(resolveVm(store.vms, ref).id);
    },

    live(ref) {
      const vm = resolveVm(store.vms, ref);
      const entry = live.get(vm.id);
      if (!entry || !vmmUp(vm.state)) throw notRunning(vm);
      return {
        vm,
        pid: entry.instance.pid,
        startTime: entry.instance.startTime,
        agent: (signal) => agentOf(vm, signal),
        busy: (running.get(vm.id) ?? 0) > 0,
        paused: vm.state === 'paused',
      };
    },

    liveIds: () => [...live.keys()],

    async ports(ref, opts = {}) {
      const vm = resolveVm(store.vms, ref);
      store.vms.touch(vm.id);
      const agent = await agentOf(vm, opts.signal);
      const ports = await guestPorts(agent, { name: vm.name, guestIp: vm.runtime.guestIp });
      return { vm, ports: await withHttpLinks(deps.runner, vm, ports, deps.network.netns) };
    },

    async sshConfig() {
      if (!deps.ssh?.configPath) throw badRequest('ssh is not configured in this daemon');
      const text = renderSshConfig(store.vms.list(), deps.ssh);
      await writeSshConfig(deps.ssh.configPath, text);
      return { path: deps.ssh.configPath, text };
    },

    async exec(ref, req, io, opts = {}) {
      const vm = resolveVm(store.vms, ref);
      store.vms.touch(vm.id);
      running.set(vm.id, (running.get(vm.id) ?? 0) + 1);
      // A signal that arrives while the command is being started is sent to it once it runs.
      let handle: ExecHandle | undefined;
      const early: string[] = [];
      const onSignal = (name: string) => (handle ? handle.signal(name) : early.push(name));
      opts.control?.on('signal', onSignal);
      const onAbort = () => handle?.signal('KILL');
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const agent = await agentOf(vm, opts.signal);
        const image = store.images.findById(vm.imageId);
        // The image's Env first, the caller's on top (later keys win).
        const env = { ...envRecord(image?.config.env ?? []), ...(req.env ?? {}) };
        const started = await agent.exec(
          { ...req, env, cwd: req.cwd ?? image?.config.workingDir, user: req.user ?? image?.config.user },
          io,
        );
        handle = started;
        if (opts.signal?.aborted) started.signal('KILL');
        for (const name of early.splice(0)) started.signal(name);
        if (req.tty) opts.control?.on('resize', (rows: number, cols: number) => started.resize(rows, cols));
        return await started.wait();
      } finally {
        opts.control?.off('signal', onSignal);
        opts.signal?.removeEventListener('abort', onAbort);
        const left = (running.get(vm.id) ?? 1) - 1;
        if (left > 0) running.set(vm.id, left);
        else running.delete(vm.id);
        // The end of a command is a use too: the idle clock starts from it, not from its start. (A VM deleted
        // meanwhile has no row: the update touches nothing; no read first on this hot path.)
        store.vms.touch(vm.id);
      }
    },

    async sshCommand(ref, opts = {}) {
      const vm = resolveVm(store.vms, ref);
      if (vm.state !== 'running' || !vm.runtime.guestIp) throw notRunning(vm);
      if (!deps.ssh) throw badRequest('ssh is not configured in this daemon');
      store.vms.touch(vm.id);
      const ip = vm.runtime.guestIp;
      const agent = await agentOf(vm, opts.signal);
      if (!(await hasSshd(agent))) {
        throw new BangerError('not_found', `VM ${vm.name}'s image has no sshd`, {
          hint: `banger vm exec ${vm.name} -- sh`,
        });
      }
      if (!(await waitForSshd(agent, { timeoutMs: SSHD_WAIT_MS, signal: opts.signal }))) {
        throw operationFailed(`sshd in VM ${vm.name} is not listening on port 22`, {
          hint: `banger vm logs ${vm.name}`,
        });
      }
      // Checked on every ssh: a key that changed since the pin is refused here, with what to do.
      const key = await readHostKey(agent);
      if (!key) throw operationFailed(`VM ${vm.name} has no ${GUEST_HOST_KEY} to pin`);
      await pinHostKey(deps.ssh.knownHostsPath, ip, key);
      await ensureSshKey(deps.runner, deps.ssh.keyPath);
      return {
        argv: ['ssh', ...sshOptions(deps.ssh.keyPath, deps.ssh.knownHostsPath), `root@${ip}`],
        netns: deps.network.netns,
      };
    },

    logPath(ref) {
      const vm = resolveVm(store.vms, ref);
      if (!vm.runtime.logPath)
        throw badRequest(`VM ${vm.name} has no console log yet`, { hint: `banger vm start ${vm.name}` });
      return vm.runtime.logPath;
    },

    async reconcile() {
      const report = await reconcileVms(deps, watch);
      await pruneWorkTemplates(deps.stateDir, store.images.list());
      return report;
    },

    pruneWorkTemplates: () => pruneWorkTemplates(deps.stateDir, store.images.list()),

    agent: (ref, opts = {}) => agentOf(resolveVm(store.vms, ref), opts.signal),
    isLive: (id) => live.has(id),
    onStopped(listener) {
      stoppedListeners.add(listener);
      return () => stoppedListeners.delete(listener);
    },

    async settleDeletes() {
      await Promise.allSettled([...tearingDown.values()]);
    },

    async close() {
      // A teardown under way finishes here (the next start would finish it too, but a clean stop leaves none).
      await Promise.allSettled([...tearingDown.values()]);
      for (const entry of live.values()) {
        entry.stopping = true; // the exit watcher must not tear down VMs we leave running
        await Promise.resolve(entry.agent?.close()).catch(() => {});
      }
      live.clear();
    },
  };
}

/** The service's exec, bound to one VM, as the workspace code takes it. */
function execIn(service: Pick<VmService, 'exec'>, id: string, opts: OpOptions): GuestExec {
  return (req, io) => service.exec(id, req, io, { signal: opts.signal });
}

export function envRecord(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of list) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
