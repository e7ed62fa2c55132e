import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, durationMs, parseConfig } from '../../../src/config/index.js';
import { vmDefaultsSchema } from '../../../src/config/schema.js';
import { createDaemonLogger } from '../../../src/daemon/logger.js';
import { parseDnsAddr } from '../../../src/daemon/services/dns/index.js';
import { limitsFromConfig } from '../../../src/rootfs/index.js';
import { chooseVmm } from '../../../src/vmm/choose.js';
import type { HostProbe } from '../../../src/vmm/host-probe.js';

// "No setting that does nothing": every key docs/config.md documents is in the schema and the schema has
// no undocumented key; an unknown key is refused; and every key has an effect. Where a pure consumer
// exists the effect is checked here; otherwise the row names the source file that reads the key and the
// test that changes it and checks what it does, and both are checked to still do so.
const REPO = resolve(import.meta.dirname, '..', '..', '..');
const read = (rel: string) => readFileSync(join(REPO, rel), 'utf8');
const docs = read('docs/config.md');

type Row =
  | { effect: () => void | Promise<void>; readBy?: string[] }
  | { readBy: string[]; coveredBy: string[] }
  | { owner: string };

const host = (over: Partial<HostProbe> = {}): HostProbe =>
  ({
    qemu: '/usr/bin/qemu-system-x86_64',
    firecracker: '/usr/bin/firecracker',
    kvmDevice: 'present',
    ...over,
  }) as HostProbe;

const KEYS: Record<string, Row> = {
  log_level: {
    effect: () => {
      const dir = mkdtempSync(join(tmpdir(), 'bgr-keys-'));
      try {
        expect(createDaemonLogger(join(dir, 'log'), parseConfig('log_level = "warn"').log_level).level).toBe(
          'warn',
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  vmm: {
    effect: () => {
      const kvm = { usable: true, reason: 'ok' };
      expect(chooseVmm(parseConfig('vmm = "qemu"'), host(), kvm).kind).toBe('qemu');
      expect(chooseVmm(parseConfig('vmm = "auto"'), host(), kvm).kind).toBe('firecracker');
    },
  },
  accel: {
    effect: () => {
      const kvm = { usable: true, reason: 'ok' };
      expect(chooseVmm(parseConfig('vmm = "qemu"\naccel = "tcg"'), host(), kvm).accel).toBe('tcg');
      expect(chooseVmm(parseConfig('vmm = "qemu"'), host(), kvm).accel).toBe('kvm');
    },
  },
  kvm_check: {
    effect: () => {
      const broken = { usable: false, reason: 'probe failed' };
      expect(chooseVmm(parseConfig('vmm = "qemu"'), host(), broken).accel).toBe('tcg');
      expect(chooseVmm(parseConfig('vmm = "qemu"\nkvm_check = "skip"'), host(), broken).accel).toBe('kvm');
    },
  },
  qemu_bin: {
    readBy: ['src/vmm/host-probe.ts', 'src/vmm/build.ts'],
    coveredBy: ['test/integration/vmm-kvm-probe.test.ts'],
  },
  firecracker_bin: {
    readBy: ['src/vmm/host-probe.ts', 'src/vmm/build.ts'],
    coveredBy: ['test/integration/vmm-kvm-probe.test.ts'],
  },
  jailer_bin: {
    readBy: ['src/vmm/build.ts'],
    coveredBy: ['test/unit/vmm/qemu/transport.test.ts', 'test/fixtures/firecracker-fake/instance.ts'],
  },
  jailer_enabled: { readBy: ['src/vmm/build.ts'], coveredBy: ['test/fixtures/firecracker-fake/instance.ts'] },
  // The daemon runs a VM under the stand-in jailer with the key set: the chroot lands there, goes at
  // delete, and a symlinked, foreign-owned or open base is refused.
  jailer_chroot_base: {
    readBy: ['src/daemon/vm-parts.ts', 'src/vmm/firecracker/jailer.ts'],
    coveredBy: ['test/integration/vm-firecracker-jailer.test.ts'],
  },
  ssh_key_path: {
    readBy: ['src/daemon/daemon.ts'],
    coveredBy: ['test/integration/config-key-effects-cli.test.ts'],
  },
  default_image_name: {
    readBy: ['src/daemon/services/vms/service.ts'],
    coveredBy: ['test/fixtures/vm-harness.ts', 'test/fixtures/firecracker-fake/instance.ts'],
  },
  default_kernel_name: {
    readBy: ['src/daemon/services/vms/start.ts'],
    coveredBy: ['test/e2e/vm-image.test.ts'],
  },
  auto_stop_stale_after: {
    effect: () =>
      expect(durationMs(parseConfig('auto_stop_stale_after = "5s"').auto_stop_stale_after)).toBe(5000),
    readBy: ['src/daemon/services/stats/service.ts'],
  },
  stats_poll_interval: {
    effect: () => {
      expect(durationMs(parseConfig('stats_poll_interval = "1s"').stats_poll_interval)).toBe(1000);
      // A poll faster than a second would only burn the host's CPU: refused.
      expect(() => parseConfig('stats_poll_interval = "10ms"')).toThrow(/stats_poll_interval/);
    },
    readBy: ['src/daemon/services/stats/service.ts'],
  },
  dns_addr: {
    effect: () => {
      expect(parseDnsAddr(parseConfig('dns_addr = "127.0.0.2:5353"').dns_addr)).toEqual({
        host: '127.0.0.2',
        port: 5353,
      });
      expect(() => parseConfig('dns_addr = "0.0.0.0:53"')).toThrow(/dns_addr/);
    },
    readBy: ['src/daemon/services/dns/service.ts'],
  },
  bridge_name: { readBy: ['src/host/net/network.ts'], coveredBy: ['test/integration/host-net.test.ts'] },
  adopt_bridge: {
    readBy: ['src/host/net/network.ts'],
    coveredBy: ['test/integration/host-net-foreign.test.ts'],
  },
  bridge_ip: { readBy: ['src/host/net/network.ts'], coveredBy: ['test/integration/host-net.test.ts'] },
  cidr: { readBy: ['src/host/net/network.ts'], coveredBy: ['test/integration/host-net.test.ts'] },
  tap_pool_size: { readBy: ['src/host/net/network.ts'], coveredBy: ['test/integration/host-net.test.ts'] },
  default_dns: { readBy: ['src/daemon/services/vms/start.ts'], coveredBy: ['test/e2e/vm-run.test.ts'] },
  netns: { readBy: ['src/host/net/network.ts'], coveredBy: ['test/integration/vm-service.test.ts'] },
  priv_helper_socket: {
    readBy: ['src/daemon/priv.ts'],
    coveredBy: ['test/integration/daemon-priv-helper.test.ts'],
  },
  cow_strategy: { readBy: ['src/host/disk/disks.ts'], coveredBy: ['test/fixtures/vm-harness.ts'] },
  insecure_registries: { readBy: ['src/oci/puller.ts'], coveredBy: ['test/integration/oci-helpers.ts'] },
  registry_ca_files: { readBy: ['src/oci/puller.ts'], coveredBy: ['test/integration/oci-auth.test.ts'] },
  registry_auths: { readBy: ['src/oci/puller.ts'], coveredBy: ['test/integration/oci-auth.test.ts'] },
  max_unpacked_size: {
    effect: () =>
      expect(limitsFromConfig(parseConfig('max_unpacked_size = "1G"')).maxUnpackedBytes).toBe(1024 ** 3),
  },
  max_entries: {
    effect: () => expect(limitsFromConfig(parseConfig('max_entries = 10')).maxEntries).toBe(10),
  },
  image_catalog: { readBy: ['src/daemon/daemon.ts'], coveredBy: ['test/integration/image-bundle.test.ts'] },
  kernel_catalog: {
    readBy: ['src/daemon/daemon.ts'],
    coveredBy: ['test/integration/config-key-effects-cli.test.ts'],
  },
  vm_defaults: { readBy: ['src/daemon/services/vms/service.ts'], coveredBy: ['test/fixtures/vm-harness.ts'] },
  // The e2e checks the identity arriving (the default); the unit test checks the key is parsed.
  git_identity: {
    readBy: ['src/daemon/services/workspaces/host-files.ts'],
    coveredBy: ['test/unit/config/config.test.ts'],
  },
  warm_templates: {
    readBy: ['src/daemon/services/vms/service.ts'],
    coveredBy: ['test/e2e/vm-run-warm.test.ts'],
  },
  file_sync: {
    readBy: ['src/daemon/services/workspaces/host-files.ts'],
    coveredBy: ['test/e2e/vm-workspace.test.ts'],
  },
};

/** The keys docs/config.md documents: the table's first column, then the [section] keys. */
function documentedKeys(): string[] {
  const table = [...docs.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1] as string);
  const sections = [...docs.matchAll(/^`\[\[?([a-z_]+)\]\]?`/gm)].map((m) => m[1] as string);
  return [...table, ...sections];
}

describe('config keys', () => {
  it('docs/config.md documents exactly the keys the schema accepts', () => {
    const documented = documentedKeys();
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(configSchema.shape).sort());
    for (const sub of Object.keys(vmDefaultsSchema.shape)) expect(docs).toContain(`\`${sub}\``);
  });

  it('refuses an unknown key, at the top and in a section', () => {
    expect(() => parseConfig('no_such_key = 1')).toThrow('unknown key "no_such_key"');
    expect(() => parseConfig('[vm_defaults]\nno_such_key = 1')).toThrow(
      'unknown key "vm_defaults.no_such_key"',
    );
    expect(() => parseConfig('[[file_sync]]\nhost = "a"\nguest = "b"\nnope = 1')).toThrow(/unknown key/);
  });

  it('has a row here for every key', () => {
    expect(Object.keys(KEYS).sort()).toEqual(Object.keys(configSchema.shape).sort());
  });

  for (const [key, row] of Object.entries(KEYS)) {
    it(`${key} has an effect`, async () => {
      if ('owner' in row) {
        // Left to the engineer whose issue gives it its effect; the row says whose.
        expect(row.owner).toMatch(/^issue \d+/);
        return;
      }
      for (const file of row.readBy ?? [])
        expect(read(file), `${file} reads ${key}`).toMatch(new RegExp(`\\b${key}\\b`));
      if ('effect' in row) await row.effect();
      else
        for (const file of row.coveredBy)
          expect(read(file), `${file} exercises ${key}`).toMatch(new RegExp(`\\b${key}\\b`));
    });
  }
});
