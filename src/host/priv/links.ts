import { alreadyExists, operationFailed } from '../../model/errors.js';
import { type LinkState, readLink } from '../ip-state.js';
import type { Runner } from '../runner.js';
import { describeOwner, linkOwner } from './link-mark.js';
import type { BridgeRequest, LinkRemoval, TapRequest } from './types.js';

/**
 * Bridge and tap commands; callers have validated every name. Each step is skipped when already done.
 * `mark` is this instance's link mark: what banger creates gets it, and nothing without it is changed.
 */
export async function ensureBridgeLink(runner: Runner, req: BridgeRequest, mark: string): Promise<void> {
  const { name, netns } = req;
  let link = await readLink(runner, name, netns);
  if (link && link.kind !== 'bridge') {
    throw operationFailed(`${name} exists but is a ${link.kind ?? 'plain'} device, not a bridge`, {
      hint: `delete it (ip link del ${name}) or choose another bridge_name`,
    });
  }
  if (link && linkOwner(link, mark) !== 'ours') {
    // An adopted bridge is used as it is: its address and state belong to whoever made it.
    if (req.adopt) return;
    throw alreadyExists(`bridge ${name} exists but ${describeOwner(link, mark)}; banger will not use it`, {
      hint: `set bridge_name in config.toml to a name nothing else uses, or set adopt_bridge = true to attach banger's taps to ${name} as it is (banger then never re-addresses or deletes it)`,
    });
  }
  if (!link)
    link = await createMarked(
      runner,
      ['ip', 'link', 'add', 'name', name, 'type', 'bridge'],
      name,
      mark,
      netns,
    );
  const cidr = `${req.ip}/${req.prefix}`;
  if (!link.addresses.includes(cidr)) {
    await runner.run(['ip', 'addr', 'add', cidr, 'dev', name], { netns });
  }
  if (!link.up) await runner.run(['ip', 'link', 'set', 'dev', name, 'up'], { netns });
}

/**
 * Deletes a link only if it carries our mark; a link without it (another program's, another banger
 * instance's) is left in place and reported as `foreign`. Gone already is `absent`.
 */
export async function deleteLink(
  runner: Runner,
  name: string,
  expectKind: string,
  mark: string,
  netns?: string,
): Promise<LinkRemoval> {
  const link = await readLink(runner, name, netns);
  if (!link) return 'absent';
  if (linkOwner(link, mark) !== 'ours') return 'foreign';
  if (link.kind !== expectKind) {
    throw operationFailed(
      `refusing to delete ${name}: it is a ${link.kind ?? 'plain'} device, not a ${expectKind}`,
    );
  }
  const res = await runner.run(['ip', 'link', 'del', 'dev', name], { netns, allowFailure: true });
  if (res.exitCode === 0) return 'deleted';
  // A concurrent teardown may have won the race; gone is what we wanted.
  if (await readLink(runner, name, netns))
    throw operationFailed(`could not delete ${name}: ${res.stderr.trim()}`);
  return 'absent';
}

export async function createTapLink(runner: Runner, req: TapRequest, mark: string): Promise<void> {
  const { name, bridge, netns } = req;
  let link = await readLink(runner, name, netns);
  if (link && link.kind !== 'tun') {
    throw operationFailed(`${name} exists but is a ${link.kind ?? 'plain'} device, not a tap`);
  }
  if (link && linkOwner(link, mark) !== 'ours') {
    throw alreadyExists(`tap ${name} exists but ${describeOwner(link, mark)}; banger will not take it over`, {
      hint: 'banger picks tap names that are free; run the operation again',
    });
  }
  if (!link) {
    const owner = req.owner === undefined ? [] : ['user', String(req.owner)];
    const argv = ['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap', ...owner];
    link = await createMarked(runner, argv, name, mark, netns);
  }
  if (link.master !== bridge)
    await runner.run(['ip', 'link', 'set', 'dev', name, 'master', bridge], { netns });
  if (!link.up) await runner.run(['ip', 'link', 'set', 'dev', name, 'up'], { netns });
}

/**
 * Runs `create` and writes the mark as the new link's alias. The kernel takes no alias at creation (tun
 * has no netlink create, and a bridge's IFLA_IFALIAS is ignored on RTM_NEWLINK), so it follows at once;
 * if marking fails the link is removed, since an unmarked link would be foreign to us from then on.
 * Both creates are exclusive (`ip tuntap add` sets IFF_TUN_EXCL, `ip link add` gets EEXIST), so a link
 * someone made under the name since we looked fails the create instead of receiving our mark.
 */
async function createMarked(
  runner: Runner,
  create: string[],
  name: string,
  mark: string,
  netns?: string,
): Promise<LinkState> {
  await runner.run(create, { netns });
  try {
    await runner.run(['ip', 'link', 'set', 'dev', name, 'alias', mark], { netns });
  } catch (err) {
    await runner.run(['ip', 'link', 'del', 'dev', name], { netns, allowFailure: true });
    throw err;
  }
  const link = await readLink(runner, name, netns);
  if (!link) throw operationFailed(`${name} vanished right after it was created`);
  return link;
}
