export { CONFINED_FILE, CONFINED_ID, type ConfinedOptions, runConfined } from './confine.js';
export * from './disk/index.js';
export { defaultRouteDevice, type LinkState, listLinks, readLink } from './ip-state.js';
export * from './net/index.js';
export { readPidFile, withPidFile } from './pidfile.js';
export * from './priv/index.js';
export {
  CLOCK_TICKS_PER_SECOND,
  checkProcessProof,
  type ProcessProof,
  type ProofCheck,
  processArgv,
  processExe,
  processExited,
  processRssBytes,
  processStartTime,
  processUids,
  readProcStat,
  systemUptimeSeconds,
} from './proc.js';
export * from './runner.js';
export { describeIdentity, type TeardownDeps, teardownAll, teardownIdentity } from './teardown.js';
export { findExecutable } from './which.js';
