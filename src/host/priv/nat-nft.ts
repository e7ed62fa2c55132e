import { CommandError, type Runner } from '../runner.js';
import type { NatRemoveRequest, NatRequest } from './types.js';

/**
 * NAT in banger's own nftables table, so banger never edits anyone else's ruleset and removing the table
 * removes everything banger added. Each guest's rules carry the comment `banger:<tap>:<guestIp>`, which
 * is how teardown finds them from the identity alone. The forward chain's policy stays `accept`: a drop
 * policy in our table would drop forwarded traffic host-wide, whatever other tables say.
 */
export function natComment(tap: string, guestIp: string): string {
  return `banger:${tap}:${guestIp}`;
}

/** The nft script that adds one guest's rules (table and chains are created when missing). */
export function nftAddScript(req: NatRequest): string {
  const t = `ip ${req.table}`;
  const c = `comment "${natComment(req.tap, req.guestIp)}"`;
  return [
    `add table ${t}`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${t} postrouting ip saddr ${req.guestIp} oifname "${req.uplink}" masquerade ${c}`,
    `add rule ${t} forward iifname "${req.tap}" oifname "${req.uplink}" accept ${c}`,
    `add rule ${t} forward oifname "${req.tap}" ct state established,related accept ${c}`,
    '',
  ].join('\n');
}

interface NftRule {
  chain: string;
  handle: number;
  comment?: string;
}

/** The rules of banger's table, or undefined when the table does not exist. */
export async function listNftRules(
  runner: Runner,
  table: string,
  netns?: string,
): Promise<NftRule[] | undefined> {
  const argv = ['nft', '-j', '-a', 'list', 'table', 'ip', table];
  const res = await runner.run(argv, { netns, allowFailure: true });
  if (res.exitCode !== 0) {
    if (/No such file or directory/i.test(res.stderr)) return undefined;
    throw new CommandError(argv, res.exitCode, res.stderr);
  }
  const doc = JSON.parse(res.stdout) as { nftables: { rule?: NftRule }[] };
  return doc.nftables.flatMap((e) => (e.rule ? [e.rule] : []));
}

export async function addNftNat(runner: Runner, req: NatRequest): Promise<void> {
  const rules = await listNftRules(runner, req.table, req.netns);
  const key = natComment(req.tap, req.guestIp);
  const mine = (rules ?? []).filter((r) => r.comment === key);
  if (mine.length === 3) return;
  // A partial set (a crash between rules cannot happen inside one nft batch, but a hand edit can) is replaced.
  if (mine.length > 0) await deleteNftRules(runner, req.table, mine, req.netns);
  await runner.run(['nft', '-f', '-'], { input: nftAddScript(req), netns: req.netns });
}

export async function removeNftNat(runner: Runner, req: NatRemoveRequest): Promise<void> {
  const rules = await listNftRules(runner, req.table, req.netns);
  if (!rules) return;
  const key = natComment(req.tap, req.guestIp);
  const mine = rules.filter((r) => r.comment === key);
  if (mine.length > 0) await deleteNftRules(runner, req.table, mine, req.netns);
  if (rules.length === mine.length) {
    await runner.run(['nft', 'delete', 'table', 'ip', req.table], { netns: req.netns, allowFailure: true });
  }
}

async function deleteNftRules(
  runner: Runner,
  table: string,
  rules: NftRule[],
  netns?: string,
): Promise<void> {
  const script = rules.map((r) => `delete rule ip ${table} ${r.chain} handle ${r.handle}\n`).join('');
  await runner.run(['nft', '-f', '-'], { input: script, netns });
}
