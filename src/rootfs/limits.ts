import type { Config } from '../config/index.js';
import { parseSize } from '../model/sizes.js';
import type { RootfsLimits } from './types.js';

/** Real images have tens of layers; Docker itself refuses more than 127. */
export const MAX_LAYERS = 128;

/** The tar-bomb limits from config.toml (`max_unpacked_size`, `max_entries`). */
export function limitsFromConfig(config: Pick<Config, 'max_unpacked_size' | 'max_entries'>): RootfsLimits {
  return {
    maxLayers: MAX_LAYERS,
    maxEntries: config.max_entries,
    maxUnpackedBytes: parseSize(config.max_unpacked_size),
  };
}

/** The defaults of config.toml, for callers without a config (tests, tools). */
export const DEFAULT_LIMITS: RootfsLimits = {
  maxLayers: MAX_LAYERS,
  maxEntries: 2_000_000,
  maxUnpackedBytes: 64 * 1024 ** 3,
};
