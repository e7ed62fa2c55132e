/**
 * The whole chain under QEMU TCG: `banger image import` (the image service: rootfs build + guest assets)
 * of the Alpine minirootfs, no kernel named, so `vm run` boots the config's default kernel from the kernel
 * store; network in a namespace this file creates.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesUsing } from '../../src/daemon/services/vms/proc-scan.js';
import { agentBinaryPath } from '../../src/guest/index.js';
import { ALPINE_TARBALL, writeInstanceConfig } from '../fixtures/alpine-guest.js';
import { type BangerInstance, createInstance } from '../fixtures/banger-instance.js';
import { ensureTestKernel } from '../fixtures/kernel.js';
import { createNetnsFixture } from '../fixtures/netns.js';

const fx = createNetnsFixture();
const runner = fx.runner;

async function probe(): Promise<string | undefined> {
  for (const tool of ['qemu-system-x86_64', 'mkfs.ext4', 'debugfs', 'apt-get', 'dpkg-deb', 'depmod']) {
    const r = await runner.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.exitCode !== 0) return `${tool} is not installed`;
  }
  if (!existsSync(ALPINE_TARBALL)) return `the Alpine minirootfs tarball is missing (${ALPINE_TARBALL})`;
  if (!existsSync(agentBinaryPath())) return `the agent is not built (${agentBinaryPath()}): npm run build`;
  if (process.getuid?.() !== 0) return 'not root (taps need it)';
  return undefined;
}
const skipReason = await probe();
if (skipReason) console.warn(`vm image e2e skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('vm run on an imported image with the default kernel', () => {
  let inst: BangerInstance;
  let version: string;

  beforeAll(async () => {
    const kernel = await ensureTestKernel();
    version = kernel.version;
    const ns = await fx.createNetns('img');
    inst = createInstance();
    await mkdir(join(inst.home, 'config'), { recursive: true });
    writeInstanceConfig(inst.home, ns, fx.id.slice(6), ['default_kernel_name = "test"']);
    // The cached test kernel is a kernel-store entry named "test": hard-link it into this store.
    await mkdir(join(inst.home, 'state', 'kernels'), { recursive: true, mode: 0o700 });
    await cp(dirname(kernel.kernelPath), join(inst.home, 'state', 'kernels', 'test'), { recursive: true });
  });

  afterAll(async () => {
    if (inst) {
      for (const p of await processesUsing(join(inst.home, 'state', 'vms'))) process.kill(p.pid, 'SIGKILL');
      await inst.cleanup();
    }
    await fx.cleanup();
    await fx.assertNoLeftovers();
  });

  it('imports, boots and runs a command, then deletes', async () => {
    const imp = await inst.cli(['image', 'import', 'alpine', ALPINE_TARBALL]);
    expect(imp.exitCode, imp.stderr).toBe(0);
    const r = await inst.cli(['vm', 'run', '--rm', '--', 'sh', '-c', 'cat /etc/alpine-release; uname -r']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`3.20.3\n${version}`);
    expect(JSON.parse((await inst.cli(['vm', 'list', '--json'])).stdout)).toEqual([]);
  });
});
