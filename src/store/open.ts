import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateFile, tightenIfPresent } from '../config/index.js';
import { BangerError, operationFailed } from '../model/errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';

export type SchemaState =
  | { kind: 'compatible'; version: number }
  | { kind: 'migrations_needed'; version: number; pending: string[] }
  | { kind: 'incompatible'; version: number; known: number };

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`;

function configure(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = NORMAL');
}

/** Opens (creating if needed) the store and applies pending migrations, each in its own transaction. */
export function openStore(path: string, migrations: readonly Migration[] = MIGRATIONS): Database.Database {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // SQLite creates its files 0644 (less the umask) and gives -wal and -shm the database file's mode:
  // a 0600 database keeps all three private. Leftovers from an older banger are tightened too.
  ensurePrivateFile(path);
  for (const side of [`${path}-wal`, `${path}-shm`]) tightenIfPresent(side);
  let db: Database.Database;
  try {
    db = new Database(path);
    configure(db);
  } catch (err) {
    throw operationFailed(`cannot open the store ${path}: ${(err as Error).message}`, {
      cause: err,
      hint: 'if the file is corrupt, move it aside; banger recreates an empty store',
    });
  }
  try {
    migrate(db, migrations);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Applies every pending migration; refuses a database newer than this binary. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  db.exec(CREATE_MIGRATIONS_TABLE);
  const state = inspectSchema(db, migrations);
  if (state.kind === 'incompatible') {
    throw new BangerError(
      'operation_failed',
      `the store has schema version ${state.version}, newer than this banger knows (${state.known})`,
      { hint: 'upgrade banger, or move the store aside' },
    );
  }
  const applied = new Set(
    (db.prepare('SELECT id FROM schema_migrations').all() as { id: number }[]).map((r) => r.id),
  );
  const record = db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)');
  let count = 0;
  for (const m of migrations) {
    if (applied.has(m.id)) continue;
    db.transaction(() => {
      m.up(db);
      record.run(m.id, m.name, new Date().toISOString());
    })();
    count++;
  }
  return count;
}

/** Classifies a database against the migrations this binary knows; read-only. */
export function inspectSchema(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
): SchemaState {
  const known = migrations.reduce((max, m) => Math.max(max, m.id), 0);
  const hasTable = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  const ids = hasTable
    ? new Set((db.prepare('SELECT id FROM schema_migrations').all() as { id: number }[]).map((r) => r.id))
    : new Set<number>();
  const version = Math.max(0, ...ids);
  if (version > known) return { kind: 'incompatible', version, known };
  const pending = migrations.filter((m) => !ids.has(m.id)).map((m) => `${m.id}_${m.name}`);
  return pending.length ? { kind: 'migrations_needed', version, pending } : { kind: 'compatible', version };
}

/** Opens an existing store read-only (doctor, --check-migrations): never creates or migrates. */
export function openStoreReadOnly(path: string): Database.Database {
  return new Database(path, { readonly: true, fileMustExist: true });
}
