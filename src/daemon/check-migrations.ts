import { existsSync } from 'node:fs';
import { inspectSchema, MIGRATIONS, openStoreReadOnly } from '../store/index.js';

/** `bangerd --check-migrations`: 0 compatible, 1 migrations needed, 2 incompatible (newer schema). */
export function checkMigrations(dbPath: string): { exitCode: 0 | 1 | 2; message: string } {
  if (!existsSync(dbPath)) {
    return { exitCode: 1, message: `no store at ${dbPath}: all ${MIGRATIONS.length} migration(s) pending` };
  }
  const db = openStoreReadOnly(dbPath);
  try {
    const state = inspectSchema(db);
    switch (state.kind) {
      case 'compatible':
        return { exitCode: 0, message: `store schema version ${state.version}: compatible` };
      case 'migrations_needed':
        return { exitCode: 1, message: `migrations needed: ${state.pending.join(', ')}` };
      case 'incompatible':
        return {
          exitCode: 2,
          message: `store schema version ${state.version} is newer than this bangerd knows (${state.known})`,
        };
    }
  } finally {
    db.close();
  }
}
