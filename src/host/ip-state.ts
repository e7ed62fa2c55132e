import { CommandError, type Runner } from './runner.js';

/**
 * Host network state read back with `ip -j` (JSON), never by parsing human output. Used by the privileged
 * operations to stay idempotent and by callers to check what the kernel really holds.
 */
export interface LinkState {
  name: string;
  /** `bridge`, `tun`, `veth`... or undefined for a plain device. */
  kind: string | undefined;
  master: string | undefined;
  up: boolean;
  /** IPv4 addresses as `a.b.c.d/prefix`. */
  addresses: string[];
  /** The link's alias (IFLA_IFALIAS), where banger writes its ownership mark; undefined when unset. */
  alias: string | undefined;
}

interface IpLinkJson {
  ifname: string;
  flags?: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/** All links of a namespace, with their IPv4 addresses. */
export async function listLinks(runner: Runner, netns?: string): Promise<LinkState[]> {
  const [links, addrs] = await Promise.all([
    runner.run(['ip', '-j', '-d', 'link', 'show'], { netns }),
    runner.run(['ip', '-j', '-4', 'addr', 'show'], { netns }),
  ]);
  const byName = new Map<string, string[]>();
  for (const a of parseJson(addrs.stdout)) {
    byName.set(
      a.ifname,
      (a.addr_info ?? []).filter((i) => i.family === 'inet').map((i) => `${i.local}/${i.prefixlen}`),
    );
  }
  return parseJson(links.stdout).map((l) => toState(l, byName.get(l.ifname) ?? []));
}

/** One link, or undefined when no link has that name. */
export async function readLink(runner: Runner, name: string, netns?: string): Promise<LinkState | undefined> {
  const argv = ['ip', '-j', '-d', 'link', 'show', 'dev', name];
  const link = await runner.run(argv, { netns, allowFailure: true });
  if (link.exitCode !== 0) {
    if (/does not exist/i.test(link.stderr)) return undefined;
    throw new CommandError(argv, link.exitCode, link.stderr);
  }
  const [first] = parseJson(link.stdout);
  if (!first) return undefined;
  const addr = await runner.run(['ip', '-j', '-4', 'addr', 'show', 'dev', name], {
    netns,
    allowFailure: true,
  });
  const info = addr.exitCode === 0 ? parseJson(addr.stdout)[0] : undefined;
  const addresses = (info?.addr_info ?? [])
    .filter((i) => i.family === 'inet')
    .map((i) => `${i.local}/${i.prefixlen}`);
  return toState(first, addresses);
}

/** The device of the IPv4 default route (the NAT uplink), or undefined when there is none. */
export async function defaultRouteDevice(runner: Runner, netns?: string): Promise<string | undefined> {
  const res = await runner.run(['ip', '-j', '-4', 'route', 'show', 'default'], { netns });
  const routes = JSON.parse(res.stdout.trim() || '[]') as { dev?: string; metric?: number }[];
  routes.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
  return routes[0]?.dev;
}

function toState(l: IpLinkJson, addresses: string[]): LinkState {
  return {
    name: l.ifname,
    kind: l.linkinfo?.info_kind,
    master: l.master,
    up: (l.flags ?? []).includes('UP'),
    addresses,
    alias: l.ifalias,
  };
}

function parseJson(text: string): IpLinkJson[] {
  const trimmed = text.trim();
  return trimmed ? (JSON.parse(trimmed) as IpLinkJson[]) : [];
}
