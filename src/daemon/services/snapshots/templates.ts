import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { toBangerError } from '../../../model/errors.js';
import type { Snapshot } from '../../../model/snapshot.js';
import type { VM } from '../../../model/vm.js';
import type { Store } from '../../../store/index.js';
import { type RestoreSource, type VmService, WARM_TEMPLATE_CREATOR } from '../vms/index.js';
import type { SnapshotService } from './service.js';

export { WARM_TEMPLATE_CREATOR };

export interface WarmTemplatesDeps {
  store: Store;
  snapshots: Pick<SnapshotService, 'create' | 'verify' | 'forRestore' | 'remove'>;
  vms: Pick<VmService, 'create' | 'delete' | 'list'>;
  log: Logger;
}

export interface WarmTemplates extends RestoreSource {
  /** The ready templates of an image (for `image show`). */
  forImage(imageId: string): Snapshot[];
  /**
   * Removes stale templates: of an image that is gone, or of an image and spec that has a newer template
   * (its image, kernel or agent changed since). One a VM still runs on is kept until it is free.
   */
  prune(): Promise<string[]>;
  /** At daemon start: a throwaway template VM left by a crash is deleted (its half snapshot is the snapshot reconcile's). */
  reconcile(): Promise<string[]>;
  /** Resolves when the templates being made now are done (tests and daemon stop). */
  idle(): Promise<void>;
}

/**
 * Warm templates for `vm run`. A template is made from a VM of its own, never the user's: booted like any
 * cold VM (work disk mounted, agent ready, sshd up where the image has it), snapshotted, then deleted. The
 * user's VM would carry its workspace, command and host keys pinned for its address, and pausing it to save
 * its memory would stall the user's command.
 */
export function createWarmTemplates(deps: WarmTemplatesDeps): WarmTemplates {
  const { store } = deps;
  const making = new Map<string, Promise<void>>();
  const templates = () => store.snapshots.list().filter((s) => s.state === 'ready' && s.template);
  const inUse = (s: Snapshot) => store.vms.list().some((v) => v.runtime.forkOf?.snapshotId === s.id);

  const drop = async (s: Snapshot) => {
    if (inUse(s)) return;
    await deps.snapshots.remove(s.id).catch((err: unknown) => {
      deps.log.warn({ template: s.name, err: toBangerError(err).message }, 'removing a warm template failed');
    });
  };

  async function make(key: string, from: { imageId: string; spec: VM['spec'] }): Promise<void> {
    const image = store.images.findById(from.imageId);
    if (!image) return;
    const name = `warm-${key.slice(0, 16)}`;
    if (store.snapshots.findByName(name)) return;
    const t0 = performance.now();
    const vm = await deps.vms.create(
      {
        name: `warm-${key.slice(0, 8)}-${randomBytes(2).toString('hex')}`,
        image: image.name,
        vcpu: from.spec.vcpu,
        memoryMib: from.spec.memoryMib,
        diskSizeBytes: from.spec.diskSizeBytes,
        systemOverlaySizeBytes: from.spec.systemOverlaySizeBytes,
        nat: from.spec.nat,
        createdBy: WARM_TEMPLATE_CREATOR,
      },
      { waitForSsh: true },
    );
    try {
      // Renamed or replaced since the run: the template would be of another image.
      if (vm.imageId !== image.id) return;
      const made = await deps.snapshots.create(vm.id, name, { template: { key, imageId: image.id } });
      deps.log.info(
        { template: made.name, image: image.name, ms: Math.round(performance.now() - t0) },
        'warm template made',
      );
    } finally {
      await deps.vms.delete(vm.id);
    }
    await prune();
  }

  async function prune(): Promise<string[]> {
    const removed: string[] = [];
    const all = templates();
    for (const s of all) {
      const imageGone = !store.images.findById(s.template?.imageId ?? '');
      const newer = all.some(
        (o) =>
          o.id !== s.id &&
          o.template?.imageId === s.template?.imageId &&
          JSON.stringify(o.spec) === JSON.stringify(s.spec) &&
          o.createdAt > s.createdAt,
      );
      if (!imageGone && !newer) continue;
      if (inUse(s)) continue;
      await drop(s);
      removed.push(s.name);
    }
    return removed;
  }

  return {
    async snapshot(ref) {
      return deps.snapshots.forRestore(ref);
    },

    async template(key) {
      const t = templates().find((s) => s.template?.key === key);
      if (!t) return undefined;
      try {
        return await deps.snapshots.forRestore(t.id);
      } catch (err) {
        // A changed or truncated template is not used, and goes: the run boots, the next one is made anew.
        deps.log.warn({ template: t.name, err: toBangerError(err).message }, 'warm template refused');
        await drop(t);
        return undefined;
      }
    },

    drop,

    warmUp(key, from) {
      if (making.has(key) || templates().some((s) => s.template?.key === key)) return;
      const job = make(key, from)
        .catch((err: unknown) =>
          deps.log.warn({ key, err: toBangerError(err).message }, 'making a warm template failed'),
        )
        .finally(() => making.delete(key));
      making.set(key, job);
    },

    forImage: (imageId) => templates().filter((s) => s.template?.imageId === imageId),
    prune,

    async reconcile() {
      const removed: string[] = [];
      for (const vm of deps.vms.list()) {
        if (vm.createdBy !== WARM_TEMPLATE_CREATOR) continue;
        await deps.vms.delete(vm.id);
        removed.push(vm.name);
      }
      removed.push(...(await prune()));
      if (removed.length) deps.log.info({ removed }, 'removed half-made or stale warm templates');
      return removed;
    },

    async idle() {
      while (making.size > 0) await Promise.allSettled([...making.values()]);
    },
  };
}
