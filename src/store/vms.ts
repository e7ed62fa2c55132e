import type Database from 'better-sqlite3';
import { alreadyExists } from '../model/errors.js';
import { parseIdentities, type RefusedIdentity } from '../model/identity.js';
import { type VM, type VMRuntime, type VMState, vmSchema } from '../model/vm.js';

interface VmRow {
  id: string;
  name: string;
  image_id: string;
  state: string;
  spec_json: string;
  runtime_json: string;
  created_at: string;
  updated_at: string;
  last_touched_at: string;
  created_by: string | null;
}

/** Told of every stored identity the store refused to hand out (the daemon logs it). */
export type OnRefusedIdentity = (vmId: string, refused: RefusedIdentity) => void;

function fromRow(row: VmRow, onRefused: OnRefusedIdentity): VM {
  const runtime = JSON.parse(row.runtime_json) as Record<string, unknown>;
  // The mirror of handles.json is as untrusted as the file: each identity passes its kind's schema or is
  // refused (reported, left out), so one damaged entry neither hides the VM nor reaches a teardown.
  const stored = Array.isArray(runtime.identities) ? runtime.identities : [];
  const { identities, refused } = parseIdentities(stored);
  for (const r of refused) onRefused(row.id, r);
  return vmSchema.parse({
    id: row.id,
    name: row.name,
    imageId: row.image_id,
    ...(row.created_by === null ? {} : { createdBy: row.created_by }),
    state: row.state,
    spec: JSON.parse(row.spec_json),
    runtime: { ...runtime, identities },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastTouchedAt: row.last_touched_at,
  });
}

/** The vms table. Runtime is stored as JSON, as the original's runtime_json. */
export class VmRepository {
  private readonly db: Database.Database;
  private readonly onRefused: OnRefusedIdentity;
  /** Told after every insert, state/runtime update and delete (the DNS records follow the store). */
  private readonly listeners = new Set<() => void>();

  constructor(db: Database.Database, onRefused: OnRefusedIdentity = () => {}) {
    this.db = db;
    this.onRefused = onRefused;
  }

  /** Calls `listener` after every change of a VM's existence, state or runtime; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch {
        // A listener's failure is its own: the write it follows has happened and must not be reported failed.
      }
    }
  }

  list(): VM[] {
    return (this.db.prepare('SELECT * FROM vms ORDER BY created_at, name').all() as VmRow[]).map((r) =>
      fromRow(r, this.onRefused),
    );
  }

  findById(id: string): VM | undefined {
    const row = this.db.prepare('SELECT * FROM vms WHERE id = ?').get(id) as VmRow | undefined;
    return row && fromRow(row, this.onRefused);
  }

  findByName(name: string): VM | undefined {
    const row = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(name) as VmRow | undefined;
    return row && fromRow(row, this.onRefused);
  }

  /** Names of VMs that use an image, for refusing `image delete`. */
  usersOfImage(imageId: string): string[] {
    return (
      this.db.prepare('SELECT name FROM vms WHERE image_id = ? ORDER BY name').all(imageId) as {
        name: string;
      }[]
    ).map((r) => r.name);
  }

  insert(vm: VM): void {
    try {
      this.db
        .prepare(
          `INSERT INTO vms (id, name, image_id, state, spec_json, runtime_json, created_at, updated_at, last_touched_at,
                            created_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          vm.id,
          vm.name,
          vm.imageId,
          vm.state,
          JSON.stringify(vm.spec),
          JSON.stringify(vm.runtime),
          vm.createdAt,
          vm.updatedAt,
          vm.lastTouchedAt,
          vm.createdBy ?? null,
        );
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw alreadyExists(`VM ${JSON.stringify(vm.name)} already exists`, { cause: err });
      }
      throw err;
    }
    this.changed();
  }

  /** Writes state and runtime together: the runtime mirror and the state must never disagree on disk. */
  update(id: string, state: VMState, runtime: VMRuntime): void {
    this.db
      .prepare('UPDATE vms SET state = ?, runtime_json = ?, updated_at = ? WHERE id = ?')
      .run(state, JSON.stringify(runtime), new Date().toISOString(), id);
    this.changed();
  }

  /** Records a user action on the VM (exec, ssh, ports, start, forward traffic): the idle rule's clock. */
  touch(id: string, at: Date = new Date()): void {
    this.db.prepare('UPDATE vms SET last_touched_at = ? WHERE id = ?').run(at.toISOString(), id);
  }

  /** `vm set`: the spec only (the VM is stopped, so its runtime does not change). */
  updateSpec(id: string, spec: VM['spec']): void {
    this.db
      .prepare('UPDATE vms SET spec_json = ?, updated_at = ? WHERE id = ?')
      .run(JSON.stringify(spec), new Date().toISOString(), id);
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM vms WHERE id = ?').run(id);
    this.changed();
  }
}
