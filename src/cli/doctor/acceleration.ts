import { loadConfig } from '../../config/index.js';
import { createKernelStore } from '../../kernel/index.js';
import {
  createKvmProbeCache,
  describeAcceleration,
  kvmProbeCachePath,
  probeHost,
  probeKvm,
  readOnlyKvmProbeCache,
} from '../../vmm/index.js';
import type { Check } from './checks.js';

/**
 * Which VMM and accelerator guests will get, and why. /dev/kvm existing is not enough (nested hosts expose
 * it while guests never start), so KVM is judged by booting an installed kernel under it (the daemon's
 * cached verdict when there is one). A fall-back to TCG is a warning: guests run, only slower.
 */
export const checkAcceleration: Check = async ({ layout, runner }) => {
  let config: Awaited<ReturnType<typeof loadConfig>>;
  try {
    config = await loadConfig(layout.configFile);
  } catch {
    return { name: 'vmm', status: 'WARN', details: ['config does not load (see the config check)'] };
  }
  const store = createKernelStore({ kernelsDir: layout.kernelsDir });
  const { kernels } = await store.list().catch(() => ({ kernels: [] }));
  const kernel = kernels.find((k) => k.manifest.name === config.default_kernel_name) ?? kernels[0];
  const cache = readOnlyKvmProbeCache(createKvmProbeCache(kvmProbeCachePath(layout.stateDir)));
  const report = await describeAcceleration(config, {
    probeHost: () => probeHost({ config, runner }),
    probeKvm: kernel
      ? (host) => probeKvm({ kernel: kernel.kernelPath, initrd: kernel.initrdPath, host, runner, cache })
      : undefined,
  });
  if (!report.ok)
    return {
      name: 'vmm',
      status: 'FAIL',
      details: [report.message],
      hint: 'see docs/vmm.md',
    };
  return {
    name: 'vmm',
    status: report.level === 'ok' ? 'PASS' : 'WARN',
    details: [report.message],
    ...(report.level === 'warn' ? { hint: 'guests still run, only slower; see docs/vmm.md' } : {}),
  };
};
