import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config, Layout } from '../config/index.js';
import { waitForAgent } from '../guest/index.js';
import type { Runner } from '../host/index.js';
import type { KernelManager } from '../kernel/index.js';
import { BangerError } from '../model/errors.js';
import {
  buildVmm,
  chooseVmm,
  createKvmProbeCache,
  kvmProbeCachePath,
  preferredAgentTransport,
  probeHost,
  probeKvm,
  vmmHandlesSchema,
} from '../vmm/index.js';
import type { ImageSource, VmmPort, VmServiceDeps } from './services/vms/index.js';

interface PartsInput {
  config: Config;
  layout: Layout;
  runner: Runner;
  /** The image service: `ensure` returns an image by name or pulls it. */
  images: ImageSource;
  kernels: KernelManager;
  log: Logger;
}

/**
 * The VMM, guest client, image and kernel sources the VM service drives: the VMM driver chosen from a host
 * probe (src/vmm), the agent client (src/guest), the image service's ensure and the kernel manager.
 */
export function buildVmParts(
  input: PartsInput,
): Pick<VmServiceDeps, 'vmm' | 'guest' | 'images' | 'kernels' | 'checkpoint'> {
  const { images, kernels, layout } = input;
  return {
    vmm: chooseOnce(input),
    guest: { waitForAgent },
    images,
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
 * Probes the host once (QEMU/Firecracker binaries, /dev/kvm, and whether KVM really boots a kernel) on the
 * first VM start, picks the driver and remembers it; a failed probe is retried on the next start.
 */
function chooseOnce({ config, layout, runner, kernels, log }: PartsInput): () => Promise<VmmPort> {
  let chosen: Promise<VmmPort> | undefined;
  const choose = async (): Promise<VmmPort> => {
    const host = await probeHost({ config, runner });
    let kvm: Awaited<ReturnType<typeof probeKvm>> | undefined;
    if (config.accel !== 'tcg' && config.kvm_check !== 'skip') {
      const kernel = await kernels.show(config.default_kernel_name).catch(() => undefined);
      if (kernel || host.kvmDevice !== 'present') {
        kvm = await probeKvm({
          kernel: kernel?.kernelPath ?? '',
          initrd: kernel?.initrdPath,
          host,
          runner,
          cache: createKvmProbeCache(kvmProbeCachePath(layout.stateDir)),
        });
      }
    }
    const choice = chooseVmm(config, host, kvm);
    log.info({ vmm: choice.kind, accel: choice.accel, reasons: choice.reasons }, 'VMM chosen');
    const driver = buildVmm(choice.kind, {
      config,
      runner,
      host,
      jailerChrootBase: config.jailer_chroot_base ?? join(layout.stateDir, 'jail'),
      shortSocketDir: layout.runtimeDir,
    });
    return {
      kind: choice.kind,
      accel: choice.accel,
      // The driver lists what this host gives it, best first (QEMU: vhost-vsock only where the host has it).
      agentTransport: preferredAgentTransport(driver),
      plan: (spec) => driver.plan(spec),
      start: (spec, opts) => driver.start(spec, opts),
      adopt: async (handles) => {
        // handles.json is validated loosely on read; the driver gets only what its schema accepts.
        const parsed = vmmHandlesSchema.safeParse(handles);
        return parsed.success ? driver.adopt(parsed.data) : null;
      },
    };
  };
  return () => {
    chosen ??= choose().catch((err: unknown) => {
      chosen = undefined;
      throw err;
    });
    return chosen;
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
