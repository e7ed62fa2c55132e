import { operationFailed } from '../../model/errors.js';
import type { Runner } from '../runner.js';
import { natComment } from './nat-nft.js';
import type { NatRemoveRequest, NatRequest } from './types.js';

/**
 * The fallback where `nft` is missing: the original's iptables rules (one MASQUERADE in nat/POSTROUTING,
 * two FORWARD accepts keyed on the tap), each tagged with the same comment as the nft rules. iptables
 * deletes by full spec, so teardown needs the uplink, which the NAT identity records.
 */
export function iptablesRules(req: { tap: string; guestIp: string; uplink: string }): string[][] {
  const tag = ['-m', 'comment', '--comment', natComment(req.tap, req.guestIp)];
  return [
    ['-t', 'nat', 'POSTROUTING', '-s', `${req.guestIp}/32`, '-o', req.uplink, ...tag, '-j', 'MASQUERADE'],
    ['-t', 'filter', 'FORWARD', '-i', req.tap, '-o', req.uplink, ...tag, '-j', 'ACCEPT'],
    [
      '-t',
      'filter',
      'FORWARD',
      '-o',
      req.tap,
      '-m',
      'conntrack',
      '--ctstate',
      'RELATED,ESTABLISHED',
      ...tag,
      '-j',
      'ACCEPT',
    ],
  ];
}

/** Splits a rule into `iptables -t T <op> CHAIN spec…`. */
function command(rule: string[], op: '-A' | '-C' | '-D'): string[] {
  const [t, table, chain, ...spec] = rule;
  return ['iptables', '-w', t!, table!, op, chain!, ...spec];
}

export async function addIptablesNat(runner: Runner, req: NatRequest): Promise<void> {
  for (const rule of iptablesRules(req)) {
    const check = await runner.run(command(rule, '-C'), { netns: req.netns, allowFailure: true });
    if (check.exitCode !== 0) await runner.run(command(rule, '-A'), { netns: req.netns });
  }
}

export async function removeIptablesNat(runner: Runner, req: NatRemoveRequest): Promise<void> {
  if (!req.uplink) {
    throw operationFailed(`cannot remove iptables NAT for ${req.guestIp}: the identity has no uplink`);
  }
  for (const rule of iptablesRules({ ...req, uplink: req.uplink })) {
    // A rule added twice by hand needs deleting twice; stop once -C says it is gone.
    for (let i = 0; i < 16; i++) {
      const check = await runner.run(command(rule, '-C'), { netns: req.netns, allowFailure: true });
      if (check.exitCode !== 0) break;
      await runner.run(command(rule, '-D'), { netns: req.netns });
    }
  }
}
