import type Database from 'better-sqlite3';
import { alreadyExists } from '../model/errors.js';
import { type Snapshot, snapshotSchema } from '../model/snapshot.js';

interface SnapshotRow {
  id: string;
  name: string;
  state: string;
  dir: string;
  meta_json: string;
  created_at: string;
}

function fromRow(row: SnapshotRow): Snapshot {
  return snapshotSchema.parse({
    ...(JSON.parse(row.meta_json) as object),
    id: row.id,
    name: row.name,
    state: row.state,
    dir: row.dir,
    createdAt: row.created_at,
  });
}

/** The snapshots table: the columns looked up by (name, state, dir) are real; the rest is JSON. */
export class SnapshotRepository {
  private readonly db: Database.Database;

  constructor(db: Database.Database) {
    this.db = db;
  }

  list(): Snapshot[] {
    return (this.db.prepare('SELECT * FROM snapshots ORDER BY created_at, name').all() as SnapshotRow[]).map(
      fromRow,
    );
  }

  findById(id: string): Snapshot | undefined {
    const row = this.db.prepare('SELECT * FROM snapshots WHERE id = ?').get(id) as SnapshotRow | undefined;
    return row && fromRow(row);
  }

  findByName(name: string): Snapshot | undefined {
    const row = this.db.prepare('SELECT * FROM snapshots WHERE name = ?').get(name) as
      | SnapshotRow
      | undefined;
    return row && fromRow(row);
  }

  /** Written before the snapshot's directory is made (its teardown identity is the row's dir). */
  insert(s: Snapshot): void {
    const { id, name, state, dir, createdAt, ...meta } = s;
    try {
      this.db
        .prepare(
          'INSERT INTO snapshots (id, name, state, dir, meta_json, created_at) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(id, name, state, dir, JSON.stringify(meta), createdAt);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw alreadyExists(`snapshot ${JSON.stringify(name)} already exists`);
      throw err;
    }
  }

  update(s: Snapshot): void {
    const { id, name: _n, state, dir, createdAt: _c, ...meta } = s;
    this.db
      .prepare('UPDATE snapshots SET state = ?, dir = ?, meta_json = ? WHERE id = ?')
      .run(state, dir, JSON.stringify(meta), id);
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
  }
}
