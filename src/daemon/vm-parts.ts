import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config, Layout } from '../config/index.js';
import { waitForAgent } from '../guest/index.js';
import type { Runner } from '../host/index.js';
import type { KernelManager } from '../kernel/index.js';
import { BangerError, notFound, operationFailed } from '../model/errors.js';
import type { Store } from '../store/index.js';
import type { VmServiceDeps } from './services/vms/index.js';

interface PartsInput {
  config: Config;
  layout: Layout;
  runner: Runner;
  store: Store;
  kernels: KernelManager;
  log: Logger;
}

/**
 * The VMM, guest client, image and kernel sources the VM service drives. The VMM drivers (src/vmm), the
 * agent client (src/guest) and the images service are wired here as they land; until then starting a VM
 * says so plainly, while listing, deleting and reconcile work.
 */
export function buildVmParts(
  input: PartsInput,
): Pick<VmServiceDeps, 'vmm' | 'guest' | 'images' | 'kernels' | 'checkpoint'> {
  const { store, kernels, layout } = input;
  const missing = (part: string) =>
    operationFailed(`this build of banger has no ${part} yet`, { hint: 'see docs/vms.md' });
  return {
    vmm: async () => {
      throw missing('VMM driver (src/vmm)');
    },
    guest: { waitForAgent },
    images: {
      async ensure(nameOrRef) {
        const image = store.images.findByName(nameOrRef) ?? store.images.findById(nameOrRef);
        if (!image) throw notFound(`no image ${JSON.stringify(nameOrRef)}`, { hint: 'banger image list' });
        return image;
      },
    },
    kernels: {
      async ensure(name, opts) {
        try {
          return await kernels.show(name);
        } catch (err) {
          if (!(err instanceof BangerError) || err.code !== 'not_found') throw err;
          return kernels.pull(name, opts);
        }
      },
    },
    checkpoint: testCheckpoint(layout),
  };
}

/**
 * BANGER_TEST_PAUSE_AT=<stage>: the crash tests' hook. At that checkpoint the daemon writes
 * `<stateDir>/paused` and stops making progress, so a test can SIGKILL it there. Unset in production.
 */
function testCheckpoint(layout: Layout): VmServiceDeps['checkpoint'] {
  const stage = process.env.BANGER_TEST_PAUSE_AT;
  if (!stage) return undefined;
  return async (at) => {
    if (at !== stage) return;
    writeFileSync(join(layout.stateDir, 'paused'), at);
    await new Promise(() => setInterval(() => {}, 60_000));
  };
}
