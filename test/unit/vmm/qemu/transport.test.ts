import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCidAllocator, createFileCidLeaseStore } from '../../../../src/host/index.js';
import { buildQemuCommand, buildVmm, preferredAgentTransport, probeHost } from '../../../../src/vmm/index.js';
import type { VmmLaunchSpec } from '../../../../src/vmm/types.js';
import { createRecordingRunner } from '../../../fixtures/recording-runner.js';

const root = mkdtempSync(join(tmpdir(), 'bgr-qemu-transport-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const spec: Omit<VmmLaunchSpec, 'agent'> = {
  name: 'dev',
  runDir: join(root, 'vms', 'dev', 'run'),
  kernelPath: join(root, 'vmlinuz'),
  cmdline: 'root=/dev/vda rw',
  rootDisk: { path: join(root, 'root.ext4'), format: 'raw' },
  vcpus: 1,
  memoryMiB: 256,
  accel: 'tcg',
};

/**
 * The path the daemon takes (vm-parts): probe the host, build the driver, ask for the transport it offers
 * first, lease the VM's CID, and only then the command line. The probe's device path is injected.
 */
async function qemuFor(vhostVsockPath: string, cidFile: string) {
  const runner = createRecordingRunner([[/--version/, { stdout: 'QEMU emulator version 7.2.22\n' }]]);
  // Any executable will do as the "QEMU" the probe finds; its --version is answered by the runner.
  const config = { qemu_bin: process.execPath, firecracker_bin: join(root, 'no-firecracker') };
  const host = await probeHost({ config, runner, vhostVsockPath, kvmPath: join(root, 'no-kvm') });
  const driver = buildVmm('qemu', {
    config: { ...config, jailer_bin: '', jailer_enabled: false },
    runner,
    host,
  });
  const cids = createCidAllocator(createFileCidLeaseStore(cidFile));
  const lease = await cids.allocate('vm-dev');
  const agent = preferredAgentTransport(driver);
  return {
    agent,
    cid: lease.cid,
    cmd: buildQemuCommand({ ...spec, agent, cid: lease.cid }, { ...host, qemuBin: 'qemu' }),
  };
}

describe('QEMU agent transport from the host probe', () => {
  it("uses vhost-vsock with the VM's leased CID where /dev/vhost-vsock is there", async () => {
    const device = join(root, 'vhost-vsock');
    writeFileSync(device, '');
    const cidFile = join(root, 'cid-leases-1.json');
    // Another VM already holds CID 3: this one gets the next.
    await createCidAllocator(createFileCidLeaseStore(cidFile)).allocate('vm-other');
    const { agent, cid, cmd } = await qemuFor(device, cidFile);
    expect(agent).toBe('vsock');
    expect(cid).toBe(4);
    expect(cmd.argv).toContain('vhost-vsock-device,guest-cid=4');
    expect(cmd.argv).not.toContain('virtio-serial-device');
    expect(cmd.agentEndpoint).toEqual({ kind: 'vsock', cid: 4, port: 1024 });
  });

  it('uses virtio-serial where the host has no vhost-vsock', async () => {
    const { agent, cmd } = await qemuFor(join(root, 'absent-vhost-vsock'), join(root, 'cid-leases-2.json'));
    expect(agent).toBe('virtio-serial');
    expect(cmd.argv.some((a) => a.startsWith('vhost-vsock'))).toBe(false);
    expect(cmd.argv).toContain('virtio-serial-device');
    expect(cmd.agentEndpoint).toEqual({ kind: 'virtio-serial', socketPath: join(spec.runDir, 'agent.sock') });
  });
});
