import type { Handler } from '../../rpc/index.js';
import type { VmStatsMethod } from '../../rpc/methods/vm-stats.js';
import type { StatsService } from '../services/stats/index.js';

/** `vm.stats`, `vm.health`, `vm.ping`: thin, each calls the stats service once. */
export function vmStatsHandlers(deps: { stats: StatsService }): { [M in VmStatsMethod]: Handler<M> } {
  const { stats } = deps;
  return {
    'vm.stats': async ({ ref }) => ({ stats: await stats.stats(ref) }),
    'vm.health': async ({ ref }) => stats.health(ref),
    'vm.ping': async ({ ref }) => stats.ping(ref),
  };
}
