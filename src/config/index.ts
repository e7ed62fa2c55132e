export { defaultConfig, loadConfig, parseConfig } from './load.js';
export * from './paths.js';
export { ensurePrivateDir, ensurePrivateFile, tightenIfPresent } from './private-paths.js';
export { type Config, configSchema, durationMs, type VmDefaults } from './schema.js';
export { bangerVersion } from './version.js';
