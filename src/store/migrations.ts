import type Database from 'better-sqlite3';
import { vmCreatedByMigration } from './migration-vm-created-by.js';

/** One schema step. Ids are dense and ordered; a migration never changes once released. */
export interface Migration {
  id: number;
  name: string;
  up(db: Database.Database): void;
}

/**
 * The ordered migrations. VM runtime lives as JSON (as the original's runtime_json) because it is a
 * mirror of teardown identities whose shape grows with the host layer; the columns the daemon queries
 * by (name, state, image) are real columns.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'baseline',
    up(db) {
      db.exec(`
        CREATE TABLE images (
          id          TEXT PRIMARY KEY,
          name        TEXT NOT NULL UNIQUE,
          managed     INTEGER NOT NULL,
          source_json TEXT NOT NULL,
          artifacts_json TEXT NOT NULL,
          config_json TEXT NOT NULL DEFAULT '{}',
          size_bytes  INTEGER NOT NULL DEFAULT 0,
          created_at  TEXT NOT NULL,
          updated_at  TEXT NOT NULL
        );
        CREATE TABLE vms (
          id           TEXT PRIMARY KEY,
          name         TEXT NOT NULL UNIQUE,
          image_id     TEXT NOT NULL REFERENCES images(id),
          state        TEXT NOT NULL CHECK (state IN ('created','running','stopped','error')),
          spec_json    TEXT NOT NULL,
          runtime_json TEXT NOT NULL DEFAULT '{}',
          created_at   TEXT NOT NULL,
          updated_at   TEXT NOT NULL,
          last_touched_at TEXT NOT NULL
        );
        CREATE INDEX vms_image_id ON vms(image_id);
      `);
    },
  },
  vmCreatedByMigration,
  {
    id: 3,
    name: 'vm_state_paused',
    // SQLite cannot change a CHECK in place: the table is rebuilt with `paused` allowed (nothing references it).
    up(db) {
      db.exec(`
        CREATE TABLE vms_new (
          id           TEXT PRIMARY KEY,
          name         TEXT NOT NULL UNIQUE,
          image_id     TEXT NOT NULL REFERENCES images(id),
          state        TEXT NOT NULL CHECK (state IN ('created','running','paused','stopped','error')),
          spec_json    TEXT NOT NULL,
          runtime_json TEXT NOT NULL DEFAULT '{}',
          created_at   TEXT NOT NULL,
          updated_at   TEXT NOT NULL,
          last_touched_at TEXT NOT NULL,
          created_by   TEXT
        );
        INSERT INTO vms_new SELECT id, name, image_id, state, spec_json, runtime_json, created_at, updated_at, last_touched_at, created_by FROM vms;
        DROP TABLE vms;
        ALTER TABLE vms_new RENAME TO vms;
        CREATE INDEX vms_image_id ON vms(image_id);
      `);
    },
  },
  {
    id: 4,
    name: 'snapshots',
    up(db) {
      db.exec(`
        CREATE TABLE snapshots (
          id         TEXT PRIMARY KEY,
          name       TEXT NOT NULL UNIQUE,
          state      TEXT NOT NULL CHECK (state IN ('creating','ready')),
          dir        TEXT NOT NULL,
          meta_json  TEXT NOT NULL,
          created_at TEXT NOT NULL
        );
      `);
    },
  },
  {
    id: 5,
    name: 'vm_state_deleting',
    // `vm delete` answers once the VM is marked and its VMM gone; the row stays, `deleting`, until the
    // teardown is done. The table is rebuilt as in vm_state_paused (SQLite cannot change a CHECK in place).
    up(db) {
      db.exec(`
        CREATE TABLE vms_new (
          id           TEXT PRIMARY KEY,
          name         TEXT NOT NULL UNIQUE,
          image_id     TEXT NOT NULL REFERENCES images(id),
          state        TEXT NOT NULL CHECK (state IN ('created','running','paused','stopped','error','deleting')),
          spec_json    TEXT NOT NULL,
          runtime_json TEXT NOT NULL DEFAULT '{}',
          created_at   TEXT NOT NULL,
          updated_at   TEXT NOT NULL,
          last_touched_at TEXT NOT NULL,
          created_by   TEXT
        );
        INSERT INTO vms_new SELECT id, name, image_id, state, spec_json, runtime_json, created_at, updated_at, last_touched_at, created_by FROM vms;
        DROP TABLE vms;
        ALTER TABLE vms_new RENAME TO vms;
        CREATE INDEX vms_image_id ON vms(image_id);
      `);
    },
  },
];
