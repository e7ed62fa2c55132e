import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Logger } from 'pino';
import type { Runner } from '../../../host/index.js';
import { BangerError, badRequest, notFound, operationFailed, toBangerError } from '../../../model/errors.js';
import { type Snapshot, type SnapshotFile, validateSnapshotName } from '../../../model/snapshot.js';
import type { VM } from '../../../model/vm.js';
import type { Store } from '../../../store/index.js';
import type { OpOptions, VmService } from '../vms/index.js';
import { createDigestCache, type DigestCache } from './digest-cache.js';
import { copyDisk, describeFile, diskFiles } from './files.js';

export interface SnapshotServiceDeps {
  store: Store;
  vms: Pick<VmService, 'withPaused' | 'fork' | 'get'>;
  runner: Runner;
  /** `<state>/snapshots`: one directory per snapshot, named by its digest; `.tmp-<id>` while written. */
  snapshotsDir: string;
  vmsDir: string;
  vmmKind: () => Promise<'qemu' | 'firecracker'>;
  log: Logger;
  /** The daemon's one digest cache (the VM service checks kernels through it too); a new one when absent. */
  digests?: DigestCache;
}

export interface SnapshotService {
  /** Saves a running or paused VM (paused while saved, resumed after when it was running). */
  create(vmRef: string, name: string, opts?: CreateOptions): Promise<Snapshot>;
  list(): Snapshot[];
  get(ref: string): Snapshot;
  /** Reads every file again and compares its digest: what a restore does before it trusts a snapshot. */
  verify(ref: string): Promise<Snapshot>;
  /**
   * A snapshot a new VM may be restored from: ready, of the VMM this daemon runs, every file's digest
   * checked. The kernel and machine type are checked by the start itself (restore-check.ts).
   */
  forRestore(ref: string): Promise<Snapshot>;
  /** Refused while a VM's overlays are backed by it (naming the VMs). */
  remove(ref: string): Promise<Snapshot>;
  /**
   * `vm fork`: a new VM restored from a snapshot, or from a VM (snapshotted first, as `<vm>-<hex>`).
   * Every file's digest is checked before use: a changed file is refused and no VM is made.
   */
  fork(ref: string, req: { name?: string }, opts?: OpOptions): Promise<{ vm: VM; snapshot: Snapshot }>;
  /** At daemon start: a snapshot cut short (SIGKILL, disk full) leaves neither row nor files. */
  reconcile(): Promise<{ removed: string[] }>;
}

const TMP_PREFIX = '.tmp-';

export interface CreateOptions {
  signal?: AbortSignal;
  /** A warm template of `vm run` (kept out of `snapshot list`), made for this key. */
  template?: Snapshot['template'];
}

export function createSnapshotService(deps: SnapshotServiceDeps): SnapshotService {
  const { store } = deps;
  // verify() runs before every fork: an untouched snapshot is hashed once per daemon, not once per fork.
  const digests = deps.digests ?? createDigestCache();

  const get = (ref: string): Snapshot => {
    const s = store.snapshots.findByName(ref) ?? store.snapshots.findById(ref);
    if (s?.state !== 'ready')
      throw notFound(`snapshot ${JSON.stringify(ref)} not found`, { hint: 'banger snapshot list' });
    return s;
  };

  /** The directory of a snapshot, unless another row shares it (content-addressed: same files). */
  const removeDirUnlessShared = async (s: Snapshot) => {
    if (store.snapshots.list().some((o) => o.id !== s.id && o.dir === s.dir)) return;
    await rm(s.dir, { recursive: true, force: true });
  };

  async function create(vmRef: string, name: string, opts: CreateOptions = {}): Promise<Snapshot> {
    validateSnapshotName(name);
    if (store.snapshots.findByName(name))
      throw new BangerError('already_exists', `snapshot ${JSON.stringify(name)} already exists`, {
        hint: `banger snapshot rm ${name}`,
      });
    const kind = await deps.vmmKind();
    return deps.vms.withPaused(vmRef, async (vm, instance) => {
      const disks = diskFiles(deps.vmsDir, vm);
      // What it runs on, so a restore onto another kernel or machine type is refused (restore-check.ts).
      const boot = vm.runtime.boot;
      if (!boot)
        throw badRequest(`VM ${vm.name} was started before banger recorded its kernel and machine type`, {
          hint: `banger vm restart ${vm.name}`,
        });
      const id = randomBytes(8).toString('hex');
      const tmp = join(deps.snapshotsDir, `${TMP_PREFIX}${id}`);
      const pending: Snapshot = {
        id,
        name,
        state: 'creating',
        dir: tmp,
        digest: '',
        source: { vmId: vm.id, vmName: vm.name, imageId: vm.imageId },
        vmm: { kind, version: '', kernelPath: boot.kernelPath, machine: boot.machine },
        spec: vm.spec,
        ...(opts.template ? { template: opts.template } : {}),
        files: [],
        sizeBytes: 0,
        createdAt: new Date().toISOString(),
      };
      // The row is the teardown identity of the temporary directory: written before the directory exists.
      store.snapshots.insert(pending);
      try {
        await mkdir(deps.snapshotsDir, { recursive: true, mode: 0o700 });
        await mkdir(tmp, { mode: 0o700 });
        const saved = await instance.saveState(tmp, opts);
        // Through the daemon's one cache (keyed by the file's identity): the restore check reads it the same way.
        const kernelSha256 = await digests.sha256(boot.kernelPath);
        const rootName = `root${extname(disks.root) || '.img'}`;
        await copyDisk(deps.runner, disks.root, join(tmp, rootName));
        await copyDisk(deps.runner, disks.work, join(tmp, 'work.ext4'));
        // Every file is hashed once, here: the digests are kept for the published paths, so a fork that
        // verifies this snapshot right after (`vm fork VM`) does not read them again.
        const describe = (name: string, role: SnapshotFile['role']) =>
          describeFile(tmp, name, role, (path) => digests.sha256Own(path));
        const files: SnapshotFile[] = [];
        for (const [i, f] of saved.files.entries())
          files.push(await describe(f, i === 0 ? 'memory' : f === saved.ramFile ? 'ram' : 'vmstate'));
        files.push(await describe(rootName, 'root-disk'));
        files.push(await describe('work.ext4', 'work-disk'));
        const digest = createHash('sha256')
          .update(files.map((f) => `${f.name} ${f.sha256}\n`).join(''))
          .digest('hex');
        const dir = join(deps.snapshotsDir, digest);
        // The rename publishes the whole snapshot at once: a crash or a full disk before it leaves only the
        // temporary directory, which the row names for reconcile.
        if (existsSync(dir)) await rm(tmp, { recursive: true, force: true });
        else {
          await rename(tmp, dir);
          digests.moved(tmp, dir);
        }
        const ready: Snapshot = {
          ...pending,
          state: 'ready',
          dir,
          digest,
          vmm: { ...pending.vmm, version: saved.vmmVersion, kernelSha256 },
          files,
          sizeBytes: files.reduce((n, f) => n + f.sizeBytes, 0),
        };
        store.snapshots.update(ready);
        return ready;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        store.snapshots.delete(id);
        const e = toBangerError(err);
        if (e.code === 'cancelled' || e.code === 'bad_request') throw e;
        throw operationFailed(`snapshot of VM ${vm.name} failed: ${e.message}`, { cause: err });
      }
    });
  }

  return {
    create,
    // Warm templates are banger's own (`image show` tells of them), not the user's snapshots.
    list: () => store.snapshots.list().filter((s) => s.state === 'ready' && !s.template),
    get,

    async verify(ref) {
      const s = get(ref);
      for (const f of s.files) {
        const path = join(s.dir, f.name);
        const actual = existsSync(path) ? await digests.sha256(path) : 'missing';
        if (actual !== f.sha256)
          throw new BangerError(
            'operation_failed',
            `snapshot ${s.name}: ${f.name} changed since it was saved (sha256 ${actual}, recorded ${f.sha256})`,
            { hint: `banger snapshot rm ${s.name}` },
          );
      }
      return s;
    },

    async fork(ref, req, opts = {}) {
      let snapshot = store.snapshots.findByName(ref) ?? store.snapshots.findById(ref);
      if (snapshot?.state !== 'ready') {
        // Not a snapshot: a VM, saved first under a generated name (the fork's overlays keep it in use).
        const vm = deps.vms.get(ref);
        const name = `${vm.name.slice(0, 50)}-${randomBytes(3).toString('hex')}`;
        snapshot = await create(vm.id, name, opts);
      }
      await this.forRestore(snapshot.id);
      return { vm: await deps.vms.fork(snapshot, req, opts), snapshot };
    },

    async forRestore(ref) {
      const snapshot = get(ref);
      const kind = await deps.vmmKind();
      // Each VMM's state format is its own: a QEMU stream means nothing to Firecracker and the reverse.
      if (snapshot.vmm.kind !== kind)
        throw badRequest(
          `snapshot ${snapshot.name} was saved under ${snapshot.vmm.kind}; this daemon runs ${kind}`,
          {
            hint: `set vmm = "${snapshot.vmm.kind}" to restore it`,
          },
        );
      return this.verify(snapshot.id);
    },

    async remove(ref) {
      const s = get(ref);
      const users = store.vms.list().filter((v) => v.runtime.forkOf?.snapshotId === s.id);
      if (users.length)
        throw new BangerError(
          'bad_request',
          `snapshot ${s.name} is in use by VM${users.length > 1 ? 's' : ''} ${users.map((v) => v.name).join(', ')} (their disks are backed by it)`,
          { hint: `banger vm delete ${users.map((v) => v.name).join(' ')}` },
        );
      await removeDirUnlessShared(s);
      store.snapshots.delete(s.id);
      return s;
    },

    async reconcile() {
      const removed: string[] = [];
      for (const s of store.snapshots.list()) {
        if (s.state !== 'creating') continue;
        await rm(s.dir, { recursive: true, force: true });
        store.snapshots.delete(s.id);
        removed.push(s.name);
      }
      // Directories no row names: a crash after a rename but before its row said so, or by hand.
      const known = new Set(store.snapshots.list().map((s) => s.dir));
      const entries = await readdir(deps.snapshotsDir).catch(() => [] as string[]);
      for (const entry of entries) {
        const path = join(deps.snapshotsDir, entry);
        if (known.has(path) || !(/^[0-9a-f]{64}$/.test(entry) || entry.startsWith(TMP_PREFIX))) continue;
        await rm(path, { recursive: true, force: true });
        removed.push(entry);
      }
      if (removed.length) deps.log.info({ removed }, 'removed snapshots cut short');
      return { removed };
    },
  };
}
