import { rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config, Layout } from '../config/index.js';
import { ensureLayoutDirs } from '../config/index.js';
import { guestAssets } from '../guest/index.js';
import {
  createFileCidLeaseStore,
  createFileIpLeaseStore,
  createHostDisks,
  createHostNetwork,
  createRunner,
  type PrivOps,
  readLink,
  resolvedRunning,
} from '../host/index.js';
import { createKernelManager } from '../kernel/index.js';
import { toBangerError } from '../model/errors.js';
import { createOciPuller } from '../oci/index.js';
import { buildRootfs, injectAssets, limitsFromConfig, writeFidelityReport } from '../rootfs/index.js';
import {
  type Handlers,
  Operations,
  type RpcServer,
  refuseIfDaemonAnswers,
  startRpcServer,
} from '../rpc/index.js';
import { createStore, openStore, type Store } from '../store/index.js';
import { fileHandlers } from './handlers/files.js';
import { forwardHandlers } from './handlers/forward.js';
import { imageHandlers } from './handlers/image.js';
import { kernelHandlers } from './handlers/kernel.js';
import { snapshotHandlers } from './handlers/snapshot.js';
import { vmHandlers } from './handlers/vm.js';
import { vmStatsHandlers } from './handlers/vm-stats.js';
import { workspaceHandlers } from './handlers/workspace.js';
import type { Posture } from './posture.js';
import { createDaemonPrivOps } from './priv.js';
import { createDnsService, type DnsService } from './services/dns/index.js';
import { createFileService } from './services/files/index.js';
import { createForwardService, type ForwardService } from './services/forwards/index.js';
import { createImageService } from './services/images/index.js';
import {
  createDigestCache,
  createSnapshotService,
  createWarmTemplates,
  type WarmTemplates,
} from './services/snapshots/index.js';
import { createStatsService } from './services/stats/index.js';
import { createVmService, tapsHeldBy, type VmService, vmPaths } from './services/vms/index.js';
import { createWorkspaceService } from './services/workspaces/index.js';
import { buildVmParts } from './vm-parts.js';

export interface DaemonOptions {
  config: Config;
  layout: Layout;
  log: Logger;
  version: string;
  /** Keeps the debootstrap recipe's tarball between builds (BANGER_RECIPE_CACHE; the test suite sets it). */
  recipeCacheDir?: string | undefined;
  /** `owner`: the daemon runs unprivileged and its taps are made for its uid, so its VMMs can open them. */
  posture?: Posture;
}

export interface Daemon {
  /** Resolves when the daemon has been asked to stop (RPC `shutdown` or a signal). */
  stopped: Promise<void>;
  stop(reason: string): Promise<void>;
}

/**
 * The composition root: opens the store, builds every service from config, wires the RPC handlers and
 * starts listening. Nothing below reads config or env on its own; it gets what it needs from here.
 */
export async function startDaemon({
  config,
  layout,
  log,
  version,
  recipeCacheDir,
  posture = 'root',
}: DaemonOptions): Promise<Daemon> {
  ensureLayoutDirs(layout);
  // Before the sweeps and reconcile below, which would take a running daemon's work for a crash's leftovers.
  await refuseIfDaemonAnswers(layout.socketPath);
  const store: Store = createStore(openStore(layout.dbPath), {
    onRefusedIdentity: (vm, { value, reason }) =>
      log.warn({ vm, identity: value, reason }, 'stored teardown identity refused; not acted on'),
  });
  const operations = new Operations();
  const runner = createRunner();
  const kernels = createKernelManager({
    kernelsDir: layout.kernelsDir,
    runner,
    catalogOverride: config.kernel_catalog,
  });
  await kernels.store.sweep(); // staging dirs left by a crash mid-install
  const puller = createOciPuller({
    cacheDir: layout.ociDir,
    config,
    runner,
    dockerConfigPath: join(homedir(), '.docker', 'config.json'),
  });
  const images = createImageService({
    store,
    kernels,
    runner,
    log: log.child({ service: 'images' }),
    imagesDir: layout.imagesDir,
    ociDir: layout.ociDir,
    parts: { rootfs: { buildRootfs, writeFidelityReport, injectAssets }, guest: { guestAssets }, puller },
    limits: limitsFromConfig(config),
    catalogOverride: config.image_catalog,
    recipeCacheDir: recipeCacheDir,
  });
  await images.sweep();
  const priv = createDaemonPrivOps({ config, runner, stateDir: layout.stateDir });
  const network = createHostNetwork({
    runner,
    priv,
    config,
    leaseStore: createFileIpLeaseStore(join(layout.stateDir, 'ip-leases.json')),
    cidLeaseStore: createFileCidLeaseStore(join(layout.stateDir, 'cid-leases.json')),
    leasedTaps: tapsHeldBy(store.vms.list()),
    ...(posture === 'owner' ? { tapOwner: process.geteuid?.() } : {}),
    log: log.child({ svc: 'network' }),
  });
  const disks = createHostDisks({ runner, priv, stateDir: layout.stateDir, vmsDir: layout.vmsDir, config });
  const vmParts = buildVmParts({ config, layout, runner, images, kernels, log });
  // Built after the VM service, which reaches it through this getter (vm run restores snapshots).
  let templates: WarmTemplates | undefined;
  // One cache for every digest the daemon checks: snapshot files before a fork, the kernel at a restore.
  const digests = createDigestCache();
  const vms: VmService = createVmService({
    store,
    config,
    vmsDir: layout.vmsDir,
    stateDir: layout.stateDir,
    runner,
    priv,
    network,
    disks,
    log: log.child({ svc: 'vms' }),
    home: homedir(),
    ssh: {
      keyPath: config.ssh_key_path ?? join(layout.sshDir, 'id_ed25519'),
      knownHostsPath: join(layout.sshDir, 'known_hosts'),
      configPath: join(layout.sshDir, 'ssh_config'),
    },
    ...vmParts,
    restores: () => templates,
    kernelDigest: (path) => digests.sha256(path),
  });
  const dns = buildDns({ config, store, runner, priv, network, log });
  const report = await vms.reconcile();
  log.info(report, 'reconciled VMs');
  const snapshots = createSnapshotService({
    store,
    vms,
    runner,
    snapshotsDir: join(layout.stateDir, 'snapshots'),
    vmsDir: layout.vmsDir,
    vmmKind: async () => (await vmParts.vmm()).kind,
    log: log.child({ svc: 'snapshots' }),
    digests,
  });
  await snapshots.reconcile();
  templates = createWarmTemplates({ store, snapshots, vms, log: log.child({ svc: 'warm' }) });
  await templates.reconcile();
  // After reconcile: the records are the adopted VMs'. A taken port leaves the daemon running without it.
  await dns.start();
  const stats = createStatsService({
    vms,
    config,
    vmsDir: layout.vmsDir,
    runner,
    log: log.child({ svc: 'stats' }),
  });
  stats.start();
  const forwards: ForwardService = createForwardService({
    vms,
    vmsDir: layout.vmsDir,
    log: log.child({ svc: 'forwards' }),
    // Straight to the guest when its bridge is in the daemon's namespace; through the agent otherwise.
    directAddress: network.netns ? undefined : (vm) => vm.runtime.guestIp,
  });
  await forwards.restore(); // the adopted VMs listen again on their forwarded ports
  const startedAt = Date.now();
  let server: RpcServer | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;

  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason, inflight: operations.size }, 'stopping');
      operations.abortAll(`daemon stopping: ${reason}`);
      await server?.close();
      await stats.close();
      await forwards.close(); // listeners go; the saved sets stay for the next daemon
      await dns.close();
      await templates?.idle(); // a template half made would leave its throwaway VM for the next start
      await vms.close(); // VMs keep running; the next daemon adopts them
      // Idle taps go (running VMs keep theirs); the next daemon refills the pool where the bridge is.
      await network.taps
        .drain()
        .catch((err: unknown) =>
          log.warn({ err: toBangerError(err).message }, 'draining the tap pool failed'),
        );
      await puller.close();
      store.db.close();
      rmSync(layout.pidPath, { force: true });
      log.info('stopped');
      resolveStopped();
    })();
    return stopping;
  };

  const handlers: Handlers = {
    ping: async () => ({ version, pid: process.pid, uptimeMs: Date.now() - startedAt }),
    shutdown: async () => {
      // Answer first, then stop: the caller waits for the socket to go away.
      setImmediate(() => void stop('shutdown requested'));
      return { stopping: true };
    },
    'daemon.operations.list': async () => ({ operations: operations.list() }),
    ...imageHandlers({ images, templates, vms }),
    ...kernelHandlers({ kernels }),
    ...vmHandlers({ vms, samples: stats.lastSamples, forwards }),
    ...vmStatsHandlers({ stats }),
    ...forwardHandlers({ forwards, vms }),
    ...fileHandlers({ files: createFileService({ vms }) }),
    ...workspaceHandlers({
      workspaces: createWorkspaceService({ vms, runner, vmDir: (id) => vmPaths(layout.vmsDir, id).dir }),
    }),
    ...snapshotHandlers({ snapshots, vms }),
  };

  try {
    server = await startRpcServer({ socketPath: layout.socketPath, handlers, version, log, operations });
  } catch (err) {
    await stats.close();
    await dns.close();
    store.db.close();
    throw err;
  }
  writeFileSync(layout.pidPath, `${process.pid}\n`, { mode: 0o600 });
  log.info(
    { version, socket: layout.socketPath, mode: layout.mode, posture, vmm: config.vmm },
    'bangerd ready',
  );
  return { stopped, stop };
}

/**
 * The `.vm` DNS server over the store: its records follow every VM change. Where systemd-resolved runs and
 * banger's bridge is in the host's namespace, `~vm` is routed to it through the privileged operations.
 */
function buildDns(input: {
  config: Config;
  store: Store;
  runner: ReturnType<typeof createRunner>;
  priv: PrivOps;
  network: ReturnType<typeof createHostNetwork>;
  log: Logger;
}): DnsService {
  const { config, store, runner, priv, network, log } = input;
  const dns = createDnsService({
    config,
    listVms: () => store.vms.list(),
    log: log.child({ svc: 'dns' }),
    async routeResolver({ host, port }) {
      // The host's resolver cannot reach a bridge inside another namespace, and there is none to route
      // on before the first VM start makes it.
      if (network.netns || !resolvedRunning()) return 'skipped';
      if (!(await readLink(runner, config.bridge_name))) return 'skipped';
      await priv.routeResolver({ link: config.bridge_name, host, port });
      return 'routed';
    },
  });
  store.vms.onChange(() => dns.refresh());
  return dns;
}
