import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRunner } from '../../../src/host/runner.js';
import { createCredentialSource } from '../../../src/oci/index.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('credential lookup', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bgr-creds-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  async function source(
    docker: object | undefined,
    own: Record<string, { username: string; password: string }> = {},
  ) {
    const path = join(dir, 'config.json');
    if (docker) await writeFile(path, JSON.stringify(docker));
    return createCredentialSource({
      config: { registry_auths: own },
      dockerConfigPath: path,
      runner: createRunner(),
    });
  }

  it('reads auths by host, with or without scheme and path, base64 or split fields', async () => {
    const get = await source({
      auths: {
        'https://ghcr.io/v2/': { auth: b64('me:pw:with:colons') },
        'quay.io': { username: 'q', password: 'p' },
      },
    });
    expect(await get('ghcr.io')).toEqual({ username: 'me', password: 'pw:with:colons' });
    expect(await get('quay.io')).toEqual({ username: 'q', password: 'p' });
    expect(await get('example.com')).toBeUndefined();
  });

  it("maps Docker Hub's legacy key to registry-1.docker.io", async () => {
    const get = await source({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:secret') } } });
    expect(await get('registry-1.docker.io')).toEqual({ username: 'hub', password: 'secret' });
  });

  it('prefers config.toml registry_auths over the Docker config', async () => {
    const get = await source(
      { auths: { 'ghcr.io': { auth: b64('docker:x') } } },
      { 'ghcr.io': { username: 'own', password: 'y' } },
    );
    expect(await get('ghcr.io')).toEqual({ username: 'own', password: 'y' });
  });

  it('treats a missing Docker config or helper as anonymous, and refuses a broken auth entry', async () => {
    expect(await (await source(undefined))('ghcr.io')).toBeUndefined();
    expect(
      await (await source({ credHelpers: { 'ghcr.io': 'not-installed-here' } }))('ghcr.io'),
    ).toBeUndefined();
    await expect(
      (await source({ auths: { 'ghcr.io': { auth: b64('nocolon') } } }))('ghcr.io'),
    ).rejects.toThrow(/not base64 of user:password/);
  });
});
