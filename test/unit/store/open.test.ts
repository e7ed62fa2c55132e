import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspectSchema, MIGRATIONS, migrate, openStore } from '../../../src/store/index.js';

describe('store migrations', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bgr-store-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('migrates an empty database and re-running is a no-op', () => {
    const path = join(dir, 'banger.db');
    const db = openStore(path);
    expect(inspectSchema(db)).toEqual({ kind: 'compatible', version: MIGRATIONS.length });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(migrate(db)).toBe(0);
    db.close();
    const again = openStore(path);
    expect((again.prepare('SELECT count(*) AS n FROM schema_migrations').get() as { n: number }).n).toBe(
      MIGRATIONS.length,
    );
    again.close();
  });

  it('classifies pending and newer schemas, and refuses to open a newer one', () => {
    const path = join(dir, 'banger.db');
    const raw = new Database(path);
    expect(inspectSchema(raw).kind).toBe('migrations_needed');
    raw.close();
    openStore(path).close();
    const db = new Database(path);
    db.prepare("INSERT INTO schema_migrations (id, name, applied_at) VALUES (999, 'future', 'x')").run();
    expect(inspectSchema(db)).toMatchObject({ kind: 'incompatible', version: 999 });
    db.close();
    expect(() => openStore(path)).toThrow(/schema version 999, newer than this banger knows/);
  });

  it('rolls a failing migration back whole', () => {
    const path = join(dir, 'banger.db');
    const broken = [
      ...MIGRATIONS,
      {
        id: MIGRATIONS.length + 1,
        name: 'broken',
        up(db: Database.Database) {
          db.exec('CREATE TABLE half (x INTEGER)');
          db.exec('THIS IS NOT SQL');
        },
      },
    ];
    expect(() => openStore(path, broken)).toThrow();
    const db = new Database(path);
    expect(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(inspectSchema(db, broken)).toMatchObject({
      kind: 'migrations_needed',
      pending: [`${broken.length}_broken`],
    });
    db.close();
  });
});
