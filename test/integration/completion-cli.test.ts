import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VM } from '../../src/model/vm.js';
import { createStore, openStore } from '../../src/store/index.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { addImage } from '../fixtures/vm-harness.js';

// Shell completion through a real daemon: live VM names for every VM verb, image and kernel names.
let inst: BangerInstance;
const stateDir = () => join(inst.home, 'state');

beforeAll(async () => {
  inst = createInstance();
  // The daemon first (its reconcile at start would finish deleting rows without a VM directory).
  expect((await inst.cli(['vm', 'list'])).exitCode).toBe(0);
  const store = createStore(openStore(join(stateDir(), 'banger.db')));
  try {
    addImage(store, 'tiny-img', '/nonexistent/rootfs.ext4');
    const now = new Date().toISOString();
    for (const name of ['apple', 'banana']) {
      const vm: VM = {
        id: `${name.padEnd(16, '0').slice(0, 16)}`,
        name,
        imageId: 'img-tiny-img',
        state: 'created',
        spec: {
          vcpu: 1,
          memoryMib: 128,
          diskSizeBytes: 1 << 20,
          systemOverlaySizeBytes: 1 << 20,
          nat: false,
        },
        runtime: { identities: [] },
        createdAt: now,
        updatedAt: now,
        lastTouchedAt: now,
      };
      store.vms.insert(vm);
    }
  } finally {
    store.db.close();
  }
  // A kernel directory without a manifest: listed as broken, and `kernel rm` is how it goes.
  mkdirSync(join(stateDir(), 'kernels', 'k-broken'), { recursive: true });
});
afterAll(async () => {
  await inst.cli(['daemon', 'stop']);
  await inst.cleanup();
});

/** The candidates `banger complete -- WORDS… ''` offers (the first column of each line). */
async function candidates(...words: string[]): Promise<string[]> {
  const r = await inst.cli(['complete', '--', ...words, '']);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout
    .split('\n')
    .filter((l) => l && !l.startsWith(':'))
    .map((l) => l.split('\t')[0] as string);
}

describe('banger completion', () => {
  it('offers live VM names for every VM verb that takes one', async () => {
    const verbs = await candidates('vm');
    // `workspace` is a group: its verbs (below) take the VM.
    const takeNoVm = new Set(['list', 'create', 'prune', 'run', 'help', 'workspace']);
    const withVm = verbs.filter((v) => !takeNoVm.has(v));
    expect(withVm).toEqual(
      expect.arrayContaining(['start', 'stop', 'ssh', 'exec', 'stats', 'health', 'ping', 'ports']),
    );
    for (const verb of withVm) expect(await candidates('vm', verb), verb).toEqual(['apple', 'banana']);
    expect(await candidates('vm', 'workspace')).toEqual(expect.arrayContaining(['prepare', 'export']));
    for (const verb of ['prepare', 'export'])
      expect(await candidates('vm', 'workspace', verb), verb).toEqual(['apple', 'banana']);
  });

  it('offers image names for image verbs and vm run, kernel names for kernel verbs', async () => {
    expect(await candidates('image', 'show')).toEqual(['tiny-img']);
    expect(await candidates('vm', 'run')).toEqual(['tiny-img']);
    expect(await candidates('kernel', 'show')).toEqual(['k-broken']);
    expect(await candidates('kernel', 'rm')).toEqual(['k-broken']);
  });
});
