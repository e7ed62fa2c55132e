import { mkdirSync, readFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import writeFileAtomic from 'write-file-atomic';
import { operationFailed } from '../../model/errors.js';

/** Leases of one numbered resource (guest IPs, vsock CIDs): resource -> owner (a VM id). */
export type Leases = Record<string, string>;

/**
 * Where leases persist. `update` is an atomic read-modify-write: no two updates interleave, in this
 * process or any other. The daemon may inject a store-backed implementation (one SQLite transaction);
 * `createFileLeaseStore` is the file one.
 */
export interface LeaseStore {
  update<T>(fn: (leases: Leases) => { leases: Leases; result: T }): Promise<T>;
  read(): Promise<Leases>;
}

/** How long to wait for another process's lock before giving up. */
const LOCK_WAIT_MS = 30_000;

/**
 * Leases in a JSON file written atomically (tmp + fsync + rename), guarded by `<file>.lock` created
 * exclusively and holding the owner's pid. A lock whose pid is dead is stale (a crash) and is taken over.
 */
export function createFileLeaseStore(path: string, what = 'lease'): LeaseStore {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const lockPath = `${path}.lock`;
  // One promise chain per store serialises this process's callers without spinning on the lock file.
  let chain: Promise<unknown> = Promise.resolve();

  const readLeases = (): Leases => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    const doc = JSON.parse(text) as { version?: number; leases?: Leases };
    if (doc.version !== 1 || typeof doc.leases !== 'object' || doc.leases === null) {
      throw operationFailed(`${what} file ${path} is not a banger lease file (version 1)`);
    }
    return { ...doc.leases };
  };

  return {
    async read() {
      return readLeases();
    },
    update<T>(fn: (leases: Leases) => { leases: Leases; result: T }): Promise<T> {
      const run = async (): Promise<T> => {
        await acquireLock(lockPath, what);
        try {
          const { leases, result } = fn(readLeases());
          await writeFileAtomic(path, `${JSON.stringify({ version: 1, leases }, null, 2)}\n`, {
            mode: 0o600,
            fsync: true,
          });
          return result;
        } finally {
          await unlink(lockPath).catch(() => {});
        }
      };
      const next = chain.then(run, run);
      chain = next.catch(() => {});
      return next;
    },
  };
}

/** Guest IP leases (`<stateDir>/ip-leases.json`). */
export function createFileIpLeaseStore(path: string): LeaseStore {
  return createFileLeaseStore(path, 'IP lease');
}

/** vsock CID leases (`<stateDir>/cid-leases.json`). */
export function createFileCidLeaseStore(path: string): LeaseStore {
  return createFileLeaseStore(path, 'vsock CID lease');
}

async function acquireLock(lockPath: string, what: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    // An empty file is a holder between open and write; only a dead pid proves a crash.
    if (holder > 0 && !isAlive(holder)) {
      await unlink(lockPath).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) {
      throw operationFailed(`timed out waiting for the ${what} lock ${lockPath} (held by pid ${holder})`, {
        hint: `if no banger process is running, remove ${lockPath}`,
      });
    }
    await sleep(delay);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
