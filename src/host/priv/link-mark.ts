import type { LinkState } from '../ip-state.js';

/**
 * What banger writes as the alias (IFLA_IFALIAS) of every link it creates. The kernel keeps the alias with
 * the link through renames, up/down and master changes; only a CAP_NET_ADMIN process in the link's
 * namespace can change it, and the random instance id keeps two banger instances (another BANGER_HOME,
 * user mode beside system mode) from ever taking each other's links for their own.
 */
export function linkMark(instanceId: string): string {
  return `${MARK_PREFIX}${instanceId}`;
}

const MARK_PREFIX = 'banger:';

/** Whose a link is, as far as its alias proves: only `ours` may be changed, handed out or deleted. */
export type LinkOwner = 'ours' | 'other-banger' | 'foreign';

export function linkOwner(link: Pick<LinkState, 'alias'>, mark: string): LinkOwner {
  if (link.alias === mark) return 'ours';
  return link.alias?.startsWith(MARK_PREFIX) ? 'other-banger' : 'foreign';
}

/** For messages: why a link is not ours. */
export function describeOwner(link: Pick<LinkState, 'alias'>, mark: string): string {
  switch (linkOwner(link, mark)) {
    case 'ours':
      return 'banger made it';
    case 'other-banger':
      return `another banger instance made it (alias ${link.alias})`;
    case 'foreign':
      return link.alias
        ? `banger did not make it (alias ${JSON.stringify(link.alias)})`
        : 'banger did not make it (no banger mark)';
  }
}
