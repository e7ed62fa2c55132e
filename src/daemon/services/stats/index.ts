/** VM stats, health and ping, the stats poller and the idle rule (issue 17). */
export { type CpuMark, sampleVm } from './sample.js';
export { createStatsService, type StatsService, type StatsServiceDeps } from './service.js';
export { type TapCounterReader, tapCounterReader } from './tap-counters.js';
