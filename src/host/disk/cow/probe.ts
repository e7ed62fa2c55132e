import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { badRequest } from '../../../model/errors.js';
import type { Runner } from '../../runner.js';
import { dmSnapshotStrategy } from './dm-snapshot.js';
import { copyStrategy, qcow2Strategy, reflinkStrategy } from './file-copy.js';
import { COW_STRATEGIES, type CowStrategy, type CowStrategyName } from './types.js';

/** What the probe found for one strategy; `reason` says why it cannot be used here. */
export interface CowProbe {
  strategy: CowStrategyName;
  available: boolean;
  reason?: string;
}

export interface ProbeOptions {
  runner: Runner;
  /** A directory on the filesystem that will hold VM disks (reflink support is per filesystem). */
  dir: string;
}

/** Tries each strategy's prerequisites on this host, cheapest checks first; never throws. */
export async function probeCowStrategies({ runner, dir }: ProbeOptions): Promise<CowProbe[]> {
  return Promise.all(COW_STRATEGIES.map((s) => probeOne(runner, dir, s)));
}

async function probeOne(runner: Runner, dir: string, strategy: CowStrategyName): Promise<CowProbe> {
  try {
    const reason = await unavailableReason(runner, dir, strategy);
    return reason ? { strategy, available: false, reason } : { strategy, available: true };
  } catch (err) {
    return { strategy, available: false, reason: firstLine((err as Error).message) };
  }
}

async function unavailableReason(
  runner: Runner,
  dir: string,
  s: CowStrategyName,
): Promise<string | undefined> {
  switch (s) {
    case 'dm-snapshot': {
      if (!existsSync('/dev/mapper/control')) return 'no device-mapper: /dev/mapper/control is missing';
      const targets = await runner.run(['dmsetup', 'targets'], { allowFailure: true });
      if (targets.exitCode !== 0) return `dmsetup targets failed: ${firstLine(targets.stderr)}`;
      if (!/^snapshot\s/m.test(targets.stdout)) {
        return 'the kernel has no dm snapshot target (modprobe dm-snapshot)';
      }
      return undefined;
    }
    case 'reflink': {
      const tmp = await mkdtemp(join(dir, '.reflink-probe-'));
      try {
        await writeFile(join(tmp, 'a'), Buffer.alloc(4096, 1));
        const res = await runner.run(['cp', '--reflink=always', join(tmp, 'a'), join(tmp, 'b')], {
          allowFailure: true,
        });
        return res.exitCode === 0
          ? undefined
          : `the filesystem of ${dir} cannot clone files: ${firstLine(res.stderr)}`;
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    }
    case 'qcow2': {
      const res = await runner.run(['qemu-img', '--version'], { allowFailure: true });
      return res.exitCode === 0 ? undefined : 'qemu-img does not run';
    }
    case 'copy':
      return undefined;
  }
}

const BY_NAME: Record<CowStrategyName, CowStrategy> = {
  'dm-snapshot': dmSnapshotStrategy,
  reflink: reflinkStrategy,
  qcow2: qcow2Strategy,
  copy: copyStrategy,
};

export function cowStrategy(name: CowStrategyName): CowStrategy {
  return BY_NAME[name];
}

/**
 * Picks the strategy: the configured one (refused with the probe's reason when it cannot work here), or
 * for `auto` the first available in order dm-snapshot, reflink, qcow2 (QEMU only), copy.
 */
export function chooseCowStrategy(
  configured: 'auto' | CowStrategyName,
  probes: readonly CowProbe[],
  vmm: 'firecracker' | 'qemu',
): CowStrategy {
  const usable = (p: CowProbe) => p.available && !(p.strategy === 'qcow2' && vmm !== 'qemu');
  if (configured !== 'auto') {
    const p = probes.find((x) => x.strategy === configured);
    if (!p || !usable(p)) {
      const why = p?.available ? `${vmm} cannot read qcow2 disks` : (p?.reason ?? 'not probed');
      throw badRequest(`cow_strategy ${configured} cannot be used here: ${why}`, {
        hint: 'set cow_strategy = "auto" to pick one that works, or fix the reason above',
      });
    }
    return BY_NAME[configured];
  }
  const first = COW_STRATEGIES.find((name) => probes.some((p) => p.strategy === name && usable(p)));
  return BY_NAME[first ?? 'copy'];
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
