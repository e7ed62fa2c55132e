import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GUEST_INIT_SHIM_PATH } from '../../../guest/index.js';
import { BootFailedError, notFound, operationFailed, toBangerError } from '../../../model/errors.js';
import type { ProgressSink } from '../../../model/progress.js';
import type { Snapshot } from '../../../model/snapshot.js';
import type { VM } from '../../../model/vm.js';
import { ensureSshKey, generateHostKey, type HostKeyPair, pinHostKey } from '../../../ssh/index.js';
import { chooseMachine } from '../../../vmm/index.js';
import { applyHostFiles, type GitIdentity, readGitIdentity } from '../workspaces/index.js';
import { guestCmdline } from './cmdline.js';
import { ensureVmDisks } from './disks.js';
import { applyForkIdentity, ensureForkDisks, forkSnapshot } from './fork.js';
import {
  installAuthorizedKey,
  mountWorkDisk,
  readHostKey,
  WORK_DISK_MOUNT,
  waitForSshd,
} from './guest-setup.js';
import { IdentityLedger } from './ledger.js';
import type { LiveVm } from './live.js';
import { macFor } from './names.js';
import type { AgentPort, BootKernel, VmmLaunchSpec } from './ports.js';
import { checkRestoreTarget } from './restore-check.js';
import { readHandles, vmPaths } from './run-dir.js';
import { undo } from './teardown.js';
import type { OpOptions, VmServiceDeps } from './types.js';
import { WARM_TEMPLATE_CREATOR } from './warm-key.js';

const DEFAULT_AGENT_TIMEOUT_MS = 120_000;
/** How long a guest with sshd may take, after its agent answers, to listen on port 22. */
const DEFAULT_SSHD_TIMEOUT_MS = 60_000;

/**
 * Boots a created or stopped VM. Every host side effect is recorded in the ledger (handles.json + the
 * store's runtime mirror) before it is made; on any failure what was made is torn down again and the VM
 * is left in `error` with the reason.
 */
export async function startVm(deps: VmServiceDeps, vm: VM, opts: OpOptions = {}): Promise<LiveVm> {
  const { store, network, config } = deps;
  const progress = opts.progress ?? (() => {});
  const t0 = performance.now();
  /** When each stage began, in ms since the start: the `VM ready` line carries them (bench/vm-run.ts). */
  const stageAtMs: Record<string, number> = {};
  const stage = (name: string, message?: string) => {
    // Stage times in the daemon log: where a slow start spends its time.
    const atMs = Math.round(performance.now() - t0);
    stageAtMs[name] = atMs;
    deps.log.debug({ vm: vm.id, stage: name, atMs }, 'start stage');
    progress({ kind: 'stage', stage: name, message });
  };
  const checkpoint = (name: string) => deps.checkpoint?.(name, vm.id) ?? Promise.resolve();
  const paths = vmPaths(deps.vmsDir, vm.id);
  await mkdir(paths.run, { recursive: true, mode: 0o700 });
  const previous = (await readHandles(paths.handles, deps.log))?.identities ?? vm.runtime.identities;
  const ledger = new IdentityLedger(store.vms, paths.handles, { vmId: vm.id, identities: previous });
  store.vms.update(vm.id, vm.state, {
    ...vm.runtime,
    vmDir: paths.dir,
    lastError: undefined,
    stopReason: undefined,
    // Written before any side effect of the restore: reconcile deletes a VM whose restore was cut short.
    ...(opts.restore ? { restoring: true } : {}),
  });

  let live: LiveVm | undefined;
  try {
    const image = store.images.findById(vm.imageId);
    if (!image) throw notFound(`image ${vm.imageId} of VM ${vm.name} no longer exists`);
    const vmm = await deps.vmm();

    stage('kernel');
    const kernel: BootKernel = image.artifacts.kernelPath
      ? { kernelPath: image.artifacts.kernelPath, initrdPath: image.artifacts.initrdPath }
      : await deps.kernels.ensure(image.artifacts.kernelRef ?? config.default_kernel_name, opts);
    // microvm where the kernel has virtio-mmio, q35 where it has only virtio-pci (a bad_request before
    // any host side effect when it has neither); an image's own kernel of unknown config keeps microvm.
    const features = kernel.manifest?.capabilities;
    const machine = chooseMachine(features ?? { virtioMmio: 'unknown', virtioPci: 'unknown' });
    const restore = opts.restore;
    // Through the daemon's digest cache: an unchanged kernel (same dev, inode, size, mtime, ctime) is not read
    // again, a changed one is, and is refused.
    if (restore)
      await checkRestoreTarget(restore, { kernelPath: kernel.kernelPath, machine }, deps.kernelDigest);
    // A restore's host-side inputs (the fork's host key, the host's git identity) are made while the network,
    // the disks and QEMU's memory load go on: none of them waits for the guest. Awaited at the identity stage.
    const forkInputs = restore ? prepareForkInputs(deps, restore) : undefined;
    forkInputs?.catch(() => {}); // a start that fails earlier never awaits it

    stage('network');
    await network.ensureBridge();
    const ip = await network.ips.allocate(vm.id);
    await ledger.record([ip.identity]);
    await checkpoint('ip');
    // Every transport gets the same CID path: leased and recorded before any VMM can be told it.
    const cid = await network.cids.allocate(vm.id);
    await ledger.record([cid.identity]);
    await checkpoint('cid');
    const tap = await network.taps.acquire();
    await ledger.record([tap]);
    // Topped up for the next start off this one's path (acquire made a tap when none was idle).
    network.taps.refill();
    await checkpoint('tap');
    if (vm.spec.nat) {
      const nat = await network.planNat(tap.name, ip.address);
      await ledger.record([nat]);
      await network.ensureNat(nat);
      await checkpoint('nat');
    }

    stage('disks');
    let root: { path: string; format: 'raw' | 'qcow2' };
    let work: { path: string; format: 'raw' | 'qcow2' } = { path: paths.workDisk, format: 'raw' };
    if (vm.runtime.forkOf) {
      const fork = await ensureForkDisks(paths.dir, forkSnapshot(deps, vm), ledger, async (from, to) => {
        await deps.runner.run(['cp', '--sparse=always', '--reflink=auto', '--', from, to]);
      });
      root = { path: fork.root, format: fork.format };
      work = { path: fork.work, format: fork.format };
    } else root = await ensureVmDisks(deps, vm, image, ledger, vmm.kind);
    const memory = restore?.files.find((f) => f.role === 'memory');
    if (restore && !memory) throw operationFailed(`snapshot ${restore.name} has no memory file`);
    // Firecracker's device state is a file of its own (QEMU's travels in the memory stream).
    const vmstate = restore?.files.find((f) => f.role === 'vmstate');
    // QEMU: a warm template's RAM as a file of its own, mapped copy-on-write by the fork.
    const ram = restore?.files.find((f) => f.role === 'ram');

    const bootAt = performance.now();
    stage('boot', vmm.accel === 'tcg' ? 'no usable KVM: software emulation (slow)' : undefined);
    const prefix = config.cidr;
    const spec: VmmLaunchSpec = {
      name: vm.name,
      runDir: paths.run,
      kernelPath: kernel.kernelPath,
      initrdPath: kernel.initrdPath,
      cmdline: guestCmdline({
        hostname: vm.name,
        address: `${ip.address}/${prefix}`,
        gateway: config.bridge_ip,
        dns: config.default_dns,
        // The agent's init shim starts the agent, then hands over to the image's own init (or stays
        // PID 1 when there is none): one way to boot systemd, OpenRC, busybox and init-less images.
        init: GUEST_INIT_SHIM_PATH,
      }),
      rootDisk: { path: root.path, format: root.format },
      extraDisks: [work],
      vcpus: vm.spec.vcpu,
      memoryMiB: vm.spec.memoryMib,
      net: { tap: tap.name, mac: macFor(vm.id) },
      agent: vmm.agentTransport,
      cid: cid.cid,
      accel: vmm.accel ?? 'tcg',
      machine,
      // Both drivers get the same facts: QEMU's machine follows them, Firecracker's preflight checks them.
      ...(features ? { kernelFeatures: features } : {}),
      netns: network.netns,
      ...(restore && memory
        ? {
            incoming: {
              memoryPath: join(restore.dir, memory.name),
              vmmVersion: restore.vmm.version,
              ...(vmstate ? { statePath: join(restore.dir, vmstate.name) } : {}),
              ...(ram ? { ramPath: join(restore.dir, ram.name) } : {}),
            },
          }
        : {}),
      ...(vm.createdBy === WARM_TEMPLATE_CREATOR ? { shareableRam: true } : {}),
    };
    // Recorded before the spawn, as every side effect is: a crash between the spawn and the line after
    // `start` leaves the VMM findable through the pidfile its spawn writes, and provable by its argv.
    const planned = vmm.plan(spec);
    await ledger.record([planned]);
    const instance = await vmm.start(spec, { signal: opts.signal });
    await ledger.replace([planned], instance.identities);
    await ledger.setVmm(instance.handles, {
      agentEndpoint: instance.agentEndpoint,
      consoleLogPath: instance.consoleLogPath,
    });
    const current = store.vms.findById(vm.id) ?? vm;
    store.vms.update(vm.id, 'running', {
      ...current.runtime,
      guestIp: ip.address,
      vmDir: paths.dir,
      logPath: instance.consoleLogPath,
      lastError: undefined,
      boot: { kernelPath: kernel.kernelPath, machine },
    });
    await checkpoint('vmm');

    stage('agent', 'waiting for the guest agent');
    live = { instance, ledger };
    // A VMM that exits during boot (the guest powered off: no init, a kernel panic) ends the wait at once
    // rather than after the whole agent timeout.
    const gaveUp = new AbortController();
    const vmmGone = instance.exited.then((e) => {
      throw operationFailed(`the VMM exited during boot (${e.signal ?? `code ${e.code}`})`);
    });
    vmmGone.catch(() => {});
    try {
      live.agent = await Promise.race([
        deps.guest.waitForAgent(instance.agentEndpoint, {
          timeoutMs: deps.agentTimeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS,
          signal: opts.signal ? AbortSignal.any([opts.signal, gaveUp.signal]) : gaveUp.signal,
        }),
        vmmGone,
      ]);
    } catch (err) {
      gaveUp.abort();
      // Cancelled (Ctrl-C, the client went away) is not a boot that failed: no "look at its log" advice.
      if (opts.signal?.aborted) throw err;
      throw new BootFailedError(
        `VM ${vm.name} booted but its agent did not answer: ${toBangerError(err).message}`,
        { vmId: vm.id, vmName: vm.name, logPath: instance.consoleLogPath, keptDespiteRm: false },
        { cause: err },
      );
    }
    const agentMs = performance.now() - bootAt;
    let sshdPresent: boolean;
    if (restore) {
      // The restored guest has the snapshot's mounts and files, and its identity: it is told the new one.
      stage('identity', 'address, hostname, clock and random seed of the fork');
      const inputs = await (forkInputs ?? prepareForkInputs(deps, restore));
      const identity = await applyForkIdentity(live.agent, {
        hostname: vm.name,
        address: ip.address,
        prefix,
        gateway: config.bridge_ip,
        mac: spec.net?.mac ?? macFor(vm.id),
        dns: config.default_dns,
        hostKey: inputs.hostKey,
        ...(inputs.git ? { git: inputs.git } : {}),
      });
      // A warm template was made under other host files: this start's apply (the git identity went in with
      // the identity script above; [[file_sync]] here, nothing to do without entries).
      if (restore.template)
        await syncHostFiles(deps, vm, live.agent, progress, { bangerGuest: true, gitIdentityApplied: true });
      sshdPresent = identity.hasSshd;
      // The guest is now this VM, not the snapshot: from here a crash leaves a VM reconcile can adopt.
      const current = store.vms.findById(vm.id);
      if (current) store.vms.update(vm.id, current.state, { ...current.runtime, restoring: undefined });
    } else {
      stage('work-disk', `mounting the work disk at ${WORK_DISK_MOUNT}`);
      const facts = await mountWorkDisk(live.agent, { sshDir: deps.ssh !== undefined });
      stage('files', 'git identity and [[file_sync]]');
      await syncHostFiles(deps, vm, live.agent, progress, { bangerGuest: facts.bangerGuest });
      sshdPresent = facts.hasSshd;
    }
    // Last of the agent's start work: a hostile host key drops the connection (the next call makes a new one).
    stage('ssh');
    // No wait for an image that will never listen on 22 (the start script looked for sshd).
    await setupSsh(deps, vm, live.agent, ip.address, (opts.waitForSsh ?? true) && sshdPresent);
    stage('ready');
    // Info level: the benchmark and a slow-start report read where the time went.
    deps.log.info(
      {
        vm: vm.id,
        vmmToAgentMs: Math.round(agentMs),
        totalMs: Math.round(performance.now() - t0),
        stageAtMs,
      },
      'VM ready',
    );
    await checkpoint('ready');
    return live;
  } catch (err) {
    await Promise.resolve(live?.agent?.close()).catch(() => {});
    await failStart(deps, vm, ledger, err);
    throw err;
  }
}

/** The host files every start brings (docs/config.md: git_identity, [[file_sync]]); warnings are shown. */
async function syncHostFiles(
  deps: VmServiceDeps,
  vm: VM,
  agent: AgentPort,
  progress: ProgressSink,
  known: { bangerGuest: boolean; gitIdentityApplied?: boolean },
) {
  const notices = await applyHostFiles(
    { runner: deps.runner, home: deps.home, config: deps.config },
    {
      exec: async (req, io) => (await agent.exec(req, io)).wait(),
      writeFile: (path, data, o) => agent.writeFile(path, data, o),
    },
    known,
  );
  for (const n of notices) {
    deps.log.warn({ vm: vm.id }, n.message);
    progress({ kind: 'log', ...n });
  }
}

/**
 * What a restored guest is told that the host makes: its own ssh host key (ssh-keygen) and, for a warm
 * template (made under other host files), the host user's git identity when git_identity is on.
 */
async function prepareForkInputs(
  deps: VmServiceDeps,
  restore: Snapshot,
): Promise<{ hostKey: HostKeyPair; git?: GitIdentity | undefined }> {
  const [hostKey, git] = await Promise.all([
    generateHostKey(deps.runner),
    restore.template && deps.config.git_identity ? readGitIdentity(deps.runner) : undefined,
  ]);
  return { hostKey, git };
}

/** Undoes what this start made (runtime identities only: the disks stay for `vm logs` and a retry). */
async function failStart(deps: VmServiceDeps, vm: VM, ledger: IdentityLedger, err: unknown): Promise<void> {
  const runtime = ledger.runtimeIdentities();
  let message = toBangerError(err).message;
  try {
    await undo(deps, vm.id, runtime);
    await ledger.forget(runtime);
    await ledger.clearVmm();
  } catch (teardownErr) {
    message += `; cleanup: ${toBangerError(teardownErr).message}`;
    deps.log.error({ vm: vm.id, err: message }, 'start cleanup failed');
  }
  const current = deps.store.vms.findById(vm.id);
  if (current) deps.store.vms.update(vm.id, 'error', { ...current.runtime, lastError: message });
}

/**
 * Puts banger's public key into the guest's root authorized_keys through the agent, and where the image has
 * sshd waits (bounded) for it to listen and pins its host key from the file, read through the agent (no
 * network scan). Best effort: exec does not need ssh, and `vm ssh` retries the pin and says what is wrong.
 */
async function setupSsh(
  deps: VmServiceDeps,
  vm: VM,
  agent: AgentPort,
  guestIp: string,
  waitForSsh: boolean,
): Promise<void> {
  if (!deps.ssh) return;
  try {
    const pub = await ensureSshKey(deps.runner, deps.ssh.keyPath);
    await installAuthorizedKey(agent, pub);
    if (!waitForSsh) return;
    if (!(await waitForSshd(agent, { timeoutMs: deps.sshdTimeoutMs ?? DEFAULT_SSHD_TIMEOUT_MS }))) {
      deps.log.warn({ vm: vm.id }, 'sshd did not start listening on port 22 in time');
      return;
    }
    const key = await readHostKey(agent);
    if (key) await pinHostKey(deps.ssh.knownHostsPath, guestIp, key);
  } catch (err) {
    deps.log.warn({ vm: vm.id, err: toBangerError(err).message }, 'ssh set-up failed');
  }
}
