import { join } from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { type BangerInstance, createInstance, REPO_ROOT } from '../fixtures/banger-instance.js';

describe('bangerd --check-migrations', () => {
  let inst: BangerInstance;
  afterEach(async () => inst?.cleanup());

  const check = () =>
    execa(process.execPath, [join(REPO_ROOT, 'bin', 'bangerd'), '--check-migrations'], {
      env: inst.env,
      reject: false,
    });

  it('exits 1 without a store, 0 when compatible, 2 when the schema is newer', async () => {
    inst = createInstance();
    const missing = await check();
    expect(missing.exitCode).toBe(1);
    expect(missing.stdout).toContain('pending');
    const dbPath = join(inst.home, 'state', 'banger.db');
    openStore(dbPath).close();
    expect((await check()).exitCode).toBe(0);
    const db = new Database(dbPath);
    db.prepare("INSERT INTO schema_migrations (id, name, applied_at) VALUES (99, 'future', 'x')").run();
    db.close();
    const newer = await check();
    expect(newer.exitCode).toBe(2);
    expect(newer.stdout).toContain('newer than this bangerd knows');
  });
});
