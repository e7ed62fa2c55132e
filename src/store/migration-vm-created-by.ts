import type { Migration } from './migrations.js';

/**
 * VMs remember who made them when a program did (`mcp`): `banger mcp serve` keeps to its own VMs across its
 * restarts by this column, not by a name pattern a user could also pick. NULL is a VM the user made.
 * Its own file so that other branches' migrations append beside it without touching this one.
 */
export const vmCreatedByMigration: Migration = {
  id: 2,
  name: 'vm_created_by',
  up(db) {
    db.exec('ALTER TABLE vms ADD COLUMN created_by TEXT');
  },
};
