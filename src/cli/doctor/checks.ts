import { existsSync } from 'node:fs';
import type { Layout } from '../../config/index.js';
import { loadConfig } from '../../config/index.js';
import type { Runner } from '../../host/runner.js';
import { findExecutable } from '../../host/which.js';
import { inspectSchema, openStoreReadOnly } from '../../store/index.js';

export type CheckStatus = 'PASS' | 'WARN' | 'FAIL';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  details: string[];
  /** What to do about a WARN or FAIL. */
  hint?: string;
  /** Debian packages that would fix it (the doctor prints one apt-get line for all of them). */
  packages?: string[];
}

/** One `apt-get install` line for every package the checks found missing; undefined when none is. */
export function aptLine(results: readonly CheckResult[]): string | undefined {
  const packages = [...new Set(results.filter((r) => r.status !== 'PASS').flatMap((r) => r.packages ?? []))];
  return packages.length ? `sudo apt-get install -y ${packages.join(' ')}` : undefined;
}

export interface DoctorContext {
  layout: Layout;
  runner: Runner;
  arch: string;
}

export type Check = (ctx: DoctorContext) => Promise<CheckResult>;

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';

/** Runs a tool's version command; undefined when the tool is missing. */
async function toolVersion(runner: Runner, argv: string[]): Promise<string | undefined> {
  try {
    const r = await runner.run(argv, { allowFailure: true, timeoutMs: 10_000 });
    return firstLine(r.stdout || r.stderr) || undefined;
  } catch {
    return undefined;
  }
}

export const checkArchitecture: Check = async ({ arch }) =>
  arch === 'x64'
    ? { name: 'architecture', status: 'PASS', details: ['x86_64'] }
    : {
        name: 'architecture',
        status: 'FAIL',
        details: [arch],
        hint: 'banger supports x86_64 hosts only (catalog kernels and the agent are amd64)',
      };

/** A required tool: FAIL with the Debian package to install when missing. */
export function requireTool(name: string, argv: string[], debianPackage: string): Check {
  return async ({ runner }) => {
    const version = await toolVersion(runner, argv);
    return version
      ? { name, status: 'PASS', details: [version] }
      : {
          name,
          status: 'FAIL',
          details: [`${argv[0]} not found`],
          hint: `apt-get install ${debianPackage} (or: npm run setup)`,
          packages: [debianPackage],
        };
  };
}

export const checkE2fsprogs: Check = async ({ runner }) => {
  const version = await toolVersion(runner, ['mke2fs', '-V']);
  const missing = [];
  for (const tool of ['mkfs.ext4', 'debugfs', 'e2fsck', 'resize2fs']) {
    if (!findExecutable(tool)) missing.push(tool);
  }
  if (!version || missing.length) {
    return {
      name: 'e2fsprogs',
      status: 'FAIL',
      details: [missing.length ? `missing: ${missing.join(', ')}` : 'mke2fs not found'],
      hint: 'apt-get install e2fsprogs',
      packages: ['e2fsprogs'],
    };
  }
  return { name: 'e2fsprogs', status: 'PASS', details: [version] };
};

export const checkFirewall: Check = async ({ runner }) => {
  const nft = await toolVersion(runner, ['nft', '--version']);
  if (nft) return { name: 'nat (nftables)', status: 'PASS', details: [nft] };
  const ipt = await toolVersion(runner, ['iptables', '--version']);
  if (ipt) return { name: 'nat (iptables fallback)', status: 'PASS', details: [ipt] };
  return {
    name: 'nat',
    status: 'WARN',
    details: ['neither nft nor iptables found: --nat will not work'],
    hint: 'apt-get install nftables',
    packages: ['nftables'],
  };
};

export const checkFirecracker: Check = async ({ runner }) => {
  const version = await toolVersion(runner, ['firecracker', '--version']);
  return version
    ? { name: 'firecracker', status: 'PASS', details: [version] }
    : {
        name: 'firecracker',
        status: 'WARN',
        details: ['not found (optional): VMs run under QEMU'],
        hint: 'install Firecracker from its releases to use it where KVM works',
      };
};

export const checkStore: Check = async ({ layout }) => {
  if (!existsSync(layout.dbPath)) {
    return { name: 'state store', status: 'PASS', details: [`${layout.dbPath} (not created yet)`] };
  }
  try {
    const db = openStoreReadOnly(layout.dbPath);
    try {
      const state = inspectSchema(db);
      if (state.kind === 'incompatible') {
        return {
          name: 'state store',
          status: 'FAIL',
          details: [`schema ${state.version} is newer than this banger (${state.known})`],
          hint: 'upgrade banger',
        };
      }
      return { name: 'state store', status: 'PASS', details: [`${layout.dbPath} (schema ${state.version})`] };
    } finally {
      db.close();
    }
  } catch (err) {
    return {
      name: 'state store',
      status: 'FAIL',
      details: [`${layout.dbPath}: ${(err as Error).message}`],
      hint: 'move the file aside; banger creates a new store',
    };
  }
};

export const checkConfig: Check = async ({ layout }) => {
  try {
    const config = await loadConfig(layout.configFile);
    const where = existsSync(layout.configFile)
      ? layout.configFile
      : `${layout.configFile} (absent: defaults)`;
    return { name: 'config', status: 'PASS', details: [where, `vmm=${config.vmm} accel=${config.accel}`] };
  } catch (err) {
    return { name: 'config', status: 'FAIL', details: [(err as Error).message], hint: 'see docs/config.md' };
  }
};
