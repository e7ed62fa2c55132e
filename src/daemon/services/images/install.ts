import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Mutex } from 'async-mutex';
import { alreadyExists } from '../../../model/errors.js';
import type { Image } from '../../../model/image.js';
import { validateArtifactName } from '../../../model/names.js';
import type { Store } from '../../../store/index.js';
import { createStaging, IMAGE_FILES, imageDir, publishStaging, removeImageDir } from './layout.js';
import { newImageId } from './naming.js';

/** What a source fills in; the installer adds id, name, managed, size and timestamps. */
export type FilledImage = Pick<Image, 'source' | 'config'> & {
  artifacts: Omit<Image['artifacts'], 'rootfsPath'> & { rootfsPath?: string };
};

/** Where a source builds: `staging` now, `finalDir` after the rename (paths stored in the row use it). */
export interface StagingContext {
  id: string;
  staging: string;
  finalDir: string;
}

/** Per-name locks: pulls, imports and deletes of one name never interleave; the second caller waits. */
export class NameLocks {
  private readonly locks = new Map<string, Mutex>();

  run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let m = this.locks.get(name);
    if (!m) {
      m = new Mutex();
      this.locks.set(name, m);
    }
    return m.runExclusive(fn);
  }
}

/**
 * Builds a managed image: refuses a taken name, fills a fresh staging directory, renames it into
 * `<imagesDir>/<id>/` and writes one store row. On any failure (including cancellation) the staging
 * directory is removed and no row exists, so a failed pull leaves nothing behind.
 */
export async function installImage(
  deps: { store: Store; imagesDir: string; locks: NameLocks },
  name: string,
  fill: (ctx: StagingContext) => Promise<FilledImage>,
): Promise<Image> {
  validateArtifactName('image', name);
  return deps.locks.run(name, async () => {
    if (deps.store.images.findByName(name)) {
      throw alreadyExists(`image ${name} already exists`, {
        hint: `choose another --name, or remove it first: banger image rm ${name}`,
      });
    }
    const id = newImageId();
    const finalDir = imageDir(deps.imagesDir, id);
    const staging = await createStaging(deps.imagesDir, id);
    let published = false;
    try {
      const filled = await fill({ id, staging, finalDir });
      const rootfsPath = join(finalDir, IMAGE_FILES.rootfs);
      const sizeBytes = (await stat(join(staging, IMAGE_FILES.rootfs))).size;
      await publishStaging(staging, deps.imagesDir, id);
      published = true;
      const now = new Date().toISOString();
      const image: Image = {
        id,
        name,
        managed: true,
        source: filled.source,
        artifacts: { ...filled.artifacts, rootfsPath },
        config: filled.config,
        sizeBytes,
        createdAt: now,
        updatedAt: now,
      };
      deps.store.images.insert(image);
      return image;
    } catch (err) {
      if (published) await removeImageDir(deps.imagesDir, id);
      else await rm(staging, { recursive: true, force: true });
      throw err;
    }
  });
}
