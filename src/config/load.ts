import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { badRequest } from '../model/errors.js';
import { type Config, configSchema } from './schema.js';

/** Top-level scalar keys that `BANGER_<KEY>` environment variables may override. */
const ENV_OVERRIDABLE = [
  'log_level',
  'vmm',
  'accel',
  'kvm_check',
  'qemu_bin',
  'firecracker_bin',
  'netns',
  'cow_strategy',
  'priv_helper_socket',
] as const;

/** Reads config.toml (a missing file means all defaults), applies env overrides, validates. */
export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw badRequest(`cannot read config ${path}: ${(err as Error).message}`);
    }
  }
  return parseConfig(text, path, env);
}

/** Parses config text; errors name the file, the key and what it must be. */
export function parseConfig(text: string, path = 'config.toml', env: NodeJS.ProcessEnv = {}): Config {
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw badRequest(`${path}: invalid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  for (const key of ENV_OVERRIDABLE) {
    const value = env[`BANGER_${key.toUpperCase()}`];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw badRequest(`${path}: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        const where = issue.path.length ? `${issue.path.join('.')}.` : '';
        return `unknown key ${issue.keys.map((k) => `"${where}${k}"`).join(', ')}`;
      }
      return `key "${issue.path.join('.')}": ${issue.message}`;
    })
    .join('; ');
}

/** The defaults, for doctor and docs. */
export const defaultConfig = (): Config => configSchema.parse({});
