import type Database from 'better-sqlite3';
import { ImageRepository } from './images.js';
import { SnapshotRepository } from './snapshots.js';
import { type OnRefusedIdentity, VmRepository } from './vms.js';

export { ImageRepository } from './images.js';
export { MIGRATIONS, type Migration } from './migrations.js';
export { inspectSchema, migrate, openStore, openStoreReadOnly, type SchemaState } from './open.js';
export { SnapshotRepository } from './snapshots.js';
export { type OnRefusedIdentity, VmRepository } from './vms.js';

/** The repositories over one open database, handed to services by the composition root. */
export interface Store {
  db: Database.Database;
  images: ImageRepository;
  vms: VmRepository;
  snapshots: SnapshotRepository;
}

/** `onRefusedIdentity` hears of every stored teardown identity refused on read (the daemon logs them). */
export function createStore(
  db: Database.Database,
  opts: { onRefusedIdentity?: OnRefusedIdentity } = {},
): Store {
  return {
    db,
    images: new ImageRepository(db),
    vms: new VmRepository(db, opts.onRefusedIdentity),
    snapshots: new SnapshotRepository(db),
  };
}
