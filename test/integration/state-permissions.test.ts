import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type BangerInstance, createInstance, waitUntil } from '../fixtures/banger-instance.js';

// The real bangerd on a state directory left loose by an older banger (or a 022 umask): it must leave the
// directories 0700 and the store (with SQLite's -wal and -shm) and its log 0600, and refuse a state dir
// another user owns.
const mode = (path: string) => statSync(path).mode & 0o7777;
const NOBODY = 65534;
// Handing a directory to another user needs root (chown).
const noChown = process.getuid?.() !== 0 ? 'not root: cannot chown a directory to another user' : undefined;

describe('state directory permissions', () => {
  let inst: BangerInstance;
  afterEach(async () => {
    await inst?.cleanup();
  });

  async function startDaemon(): Promise<void> {
    const r = await inst.cli(['vm', 'list', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    await waitUntil(() => existsSync(`${state()}/banger.db-shm`));
  }
  const state = () => join(inst.home, 'state');

  it('a fresh state keeps the store, its -wal and -shm and the log 0600 under a 022 umask', async () => {
    inst = createInstance();
    const old = process.umask(0o022); // the CLI's daemon inherits it
    try {
      await startDaemon();
    } finally {
      process.umask(old);
    }
    expect(mode(state())).toBe(0o700);
    for (const file of ['banger.db', 'banger.db-wal', 'banger.db-shm', 'bangerd.log'])
      expect([file, mode(join(state(), file))]).toEqual([file, 0o600]);
  });

  it('tightens an existing loose state dir, store and log', async () => {
    inst = createInstance();
    mkdirSync(join(state(), 'images'), { recursive: true });
    mkdirSync(join(inst.home, 'cache'), { recursive: true });
    for (const dir of [state(), join(state(), 'images'), join(inst.home, 'cache')]) chmodSync(dir, 0o755);
    // A store a real SQLite left 0644 in WAL mode, with its -wal and -shm still there (a crash).
    const db = new Database(join(state(), 'banger.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE leftover (x INTEGER)');
    writeFileSync(join(state(), 'bangerd.log'), '');
    for (const file of ['banger.db', 'banger.db-wal', 'banger.db-shm', 'bangerd.log'])
      chmodSync(join(state(), file), 0o644);
    await startDaemon();
    db.close();
    for (const dir of [state(), join(state(), 'images'), join(inst.home, 'cache')])
      expect([dir, mode(dir)]).toEqual([dir, 0o700]);
    for (const file of ['banger.db', 'banger.db-wal', 'banger.db-shm', 'bangerd.log'])
      expect([file, mode(join(state(), file))]).toEqual([file, 0o600]);
  });

  it.skipIf(noChown)('refuses to start on a state dir owned by another user, saying why', async () => {
    inst = createInstance();
    mkdirSync(state(), { mode: 0o700 });
    chownSync(state(), NOBODY, NOBODY);
    const daemon = inst.daemon();
    // A daemon that accepted the directory would serve until killed (cleanup does): bound the wait.
    let timer: NodeJS.Timeout | undefined;
    const started = new Promise<'serving'>((r) => {
      timer = setTimeout(() => r('serving'), 15_000);
    });
    const r = await Promise.race([daemon, started]);
    clearTimeout(timer);
    expect(r).not.toBe('serving');
    if (r === 'serving') return;
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(`${state()} is owned by uid ${NOBODY}, not by uid ${process.getuid?.()}`);
    expect(r.stderr).toContain('hint:');
    expect(existsSync(join(state(), 'banger.db'))).toBe(false);
    expect(statSync(state()).mode & 0o777).toBe(0o700);
  });
});
