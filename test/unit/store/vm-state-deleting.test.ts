import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate } from '../../../src/store/index.js';

describe('migration 5: the deleting VM state', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bgr-store-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the rows of a version-4 store and allows `deleting`, nothing else new', () => {
    const db = new Database(join(dir, 'banger.db'));
    db.pragma('foreign_keys = ON');
    migrate(db, MIGRATIONS.slice(0, 4));
    const now = new Date().toISOString();
    db.prepare(
      "INSERT INTO images (id, name, managed, source_json, artifacts_json, created_at, updated_at) VALUES ('i1', 'img', 1, '{}', '{}', ?, ?)",
    ).run(now, now);
    db.prepare(
      "INSERT INTO vms (id, name, image_id, state, spec_json, runtime_json, created_at, updated_at, last_touched_at, created_by) VALUES ('v1', 'dev', 'i1', 'paused', '{}', '{\"guestIp\":\"10.0.0.2\"}', ?, ?, ?, 'mcp')",
    ).run(now, now, now);
    const setState = db.prepare("UPDATE vms SET state = ? WHERE id = 'v1'");
    expect(() => setState.run('deleting')).toThrow(/CHECK constraint/);

    expect(migrate(db)).toBe(MIGRATIONS.length - 4);
    const row = db.prepare("SELECT * FROM vms WHERE id = 'v1'").get() as Record<string, string>;
    expect(row).toMatchObject({ name: 'dev', image_id: 'i1', state: 'paused', created_by: 'mcp' });
    expect(JSON.parse(row.runtime_json as string)).toEqual({ guestIp: '10.0.0.2' });
    setState.run('deleting');
    expect(() => setState.run('gone')).toThrow(/CHECK constraint/);
    // The unique name, the index and the foreign key to images survive the rebuild.
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'vms_image_id'").get()).toBeDefined();
    expect(() => db.prepare("UPDATE vms SET image_id = 'nope' WHERE id = 'v1'").run()).toThrow(/FOREIGN KEY/);
    db.close();
  });
});
