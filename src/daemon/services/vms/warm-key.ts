import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { agentBinaryPath } from '../../../guest/index.js';
import type { Image } from '../../../model/image.js';
import type { VM } from '../../../model/vm.js';
import { chooseMachine } from '../../../vmm/index.js';
import type { OpOptions, VmServiceDeps } from './types.js';

/**
 * The tag of the throwaway VMs warm templates are made from (`vm list` shows them while they exist). Their
 * RAM is a file (shareableRam), so the template's forks map it copy-on-write instead of reading a stream.
 */
export const WARM_TEMPLATE_CREATOR = 'banger-warm';

/** A file as it is now (a rebuilt or replaced file changes size, mtime or inode): cheap enough for every run. */
async function fingerprint(path: string | undefined): Promise<string> {
  if (!path) return 'none';
  const st = await stat(path).catch(() => undefined);
  return st ? `${st.size}:${st.mtimeMs}:${st.ino}` : 'missing';
}

/**
 * The warm template key of a `vm run`: the digest of everything its first boot depends on (the image and its
 * rootfs file, the kernel and initrd it boots, the machine type, the host's agent binary, the VMM and its
 * acceleration, the copy-on-write strategy and the VM spec). A template is only ever used under its own key,
 * so a change to any of these boots cold and makes a new one.
 */
export async function warmTemplateKey(
  deps: Pick<VmServiceDeps, 'vmm' | 'kernels' | 'config'>,
  image: Image,
  spec: VM['spec'],
  opts: OpOptions,
): Promise<string> {
  const vmm = await deps.vmm();
  const kernel = image.artifacts.kernelPath
    ? { kernelPath: image.artifacts.kernelPath, initrdPath: image.artifacts.initrdPath, manifest: undefined }
    : await deps.kernels.ensure(image.artifacts.kernelRef ?? deps.config.default_kernel_name, opts);
  const machine = chooseMachine(
    kernel.manifest?.capabilities ?? { virtioMmio: 'unknown', virtioPci: 'unknown' },
  );
  const inputs = {
    v: 1,
    image: {
      id: image.id,
      updatedAt: image.updatedAt,
      rootfs: await fingerprint(image.artifacts.rootfsPath),
    },
    kernel: {
      path: kernel.kernelPath,
      file: await fingerprint(kernel.kernelPath),
      initrd: await fingerprint(kernel.initrdPath),
    },
    machine,
    agent: await fingerprint(agentBinaryPath()),
    vmm: { kind: vmm.kind, accel: vmm.accel ?? 'tcg', transport: vmm.agentTransport },
    cow: deps.config.cow_strategy,
    spec,
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}
