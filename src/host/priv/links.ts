import { operationFailed } from '../../model/errors.js';
import { readLink } from '../ip-state.js';
import type { Runner } from '../runner.js';
import type { BridgeRequest, TapRequest } from './types.js';

/** Bridge and tap commands; callers have validated every name. Each step is skipped when already done. */
export async function ensureBridgeLink(runner: Runner, req: BridgeRequest): Promise<void> {
  const { name, netns } = req;
  let link = await readLink(runner, name, netns);
  if (link && link.kind !== 'bridge') {
    throw operationFailed(`${name} exists but is a ${link.kind ?? 'plain'} device, not a bridge`, {
      hint: `delete it (ip link del ${name}) or choose another bridge_name`,
    });
  }
  if (!link) {
    await runner.run(['ip', 'link', 'add', 'name', name, 'type', 'bridge'], { netns });
    link = await readLink(runner, name, netns);
  }
  const cidr = `${req.ip}/${req.prefix}`;
  if (!link?.addresses.includes(cidr)) {
    await runner.run(['ip', 'addr', 'add', cidr, 'dev', name], { netns });
  }
  if (!link?.up) await runner.run(['ip', 'link', 'set', 'dev', name, 'up'], { netns });
}

/** Deletes a link if it exists; `expectKind` guards against deleting a foreign device that took the name. */
export async function deleteLink(
  runner: Runner,
  name: string,
  expectKind: string,
  netns?: string,
): Promise<void> {
  const link = await readLink(runner, name, netns);
  if (!link) return;
  if (link.kind !== expectKind) {
    throw operationFailed(
      `refusing to delete ${name}: it is a ${link.kind ?? 'plain'} device, not a ${expectKind}`,
    );
  }
  const res = await runner.run(['ip', 'link', 'del', 'dev', name], { netns, allowFailure: true });
  // A concurrent teardown may have won the race; gone is what we wanted.
  if (res.exitCode !== 0 && (await readLink(runner, name, netns))) {
    throw operationFailed(`could not delete ${name}: ${res.stderr.trim()}`);
  }
}

export async function createTapLink(runner: Runner, req: TapRequest): Promise<void> {
  const { name, bridge, netns } = req;
  let link = await readLink(runner, name, netns);
  if (link && link.kind !== 'tun') {
    throw operationFailed(`${name} exists but is a ${link.kind ?? 'plain'} device, not a tap`);
  }
  if (!link) {
    const owner = req.owner === undefined ? [] : ['user', String(req.owner)];
    await runner.run(['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap', ...owner], { netns });
    link = await readLink(runner, name, netns);
  }
  if (link?.master !== bridge)
    await runner.run(['ip', 'link', 'set', 'dev', name, 'master', bridge], { netns });
  if (!link?.up) await runner.run(['ip', 'link', 'set', 'dev', name, 'up'], { netns });
}
