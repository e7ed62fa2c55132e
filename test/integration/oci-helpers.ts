/** Shared bits of the oci integration tests: a puller on a temp cache and what the cache holds. */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../../src/config/index.js';
import { BangerError } from '../../src/model/errors.js';
import { createOciPuller, type OciPuller, type OciPullerDeps } from '../../src/oci/index.js';

export type RegistryConfig = Pick<Config, 'insecure_registries' | 'registry_ca_files' | 'registry_auths'>;

export const noRegistryConfig: RegistryConfig = {
  insecure_registries: [],
  registry_ca_files: [],
  registry_auths: {},
};

export interface PullerFixture {
  puller: OciPuller;
  cacheDir: string;
  cleanup(): Promise<void>;
}

export async function makePuller(over: Partial<OciPullerDeps> = {}): Promise<PullerFixture> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'bgr-oci-cache-'));
  // No Docker config unless a test gives one: the host's own ~/.docker must not colour results.
  const puller = createOciPuller({ cacheDir, config: noRegistryConfig, dockerConfigPath: null, ...over });
  return {
    puller,
    cacheDir,
    async cleanup() {
      await puller.close();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/** Files in the cache's blob store and temp dir: what a failed pull must leave empty. */
export async function cacheFiles(cacheDir: string): Promise<{ blobs: string[]; tmp: string[] }> {
  const list = (d: string) => readdir(d).catch(() => [] as string[]);
  return {
    blobs: (await list(join(cacheDir, 'blobs', 'sha256'))).sort(),
    tmp: await list(join(cacheDir, 'tmp')),
  };
}

export async function sha256Of(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** The BangerError a promise rejects with (fails the test when it resolves or throws something else). */
export async function rejection(p: Promise<unknown>): Promise<BangerError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BangerError) return err;
    throw new Error(`expected a BangerError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a rejection, the promise resolved');
}
