import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../host/index.js';
import { operationFailed } from '../model/errors.js';

/** A guest's ed25519 host key pair, made on the host: the private key (OpenSSH format) and its `.pub` line. */
export interface HostKeyPair {
  privateKey: string;
  publicKey: string;
}

const PRIVATE = /^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n$/;
const PUBLIC = /^ssh-ed25519 [A-Za-z0-9+/=]+$/;

/**
 * A fresh host key for a guest that must not keep the one it was copied with (a fork shares its snapshot's
 * disk, so every fork would otherwise prove the same identity and one could pose as another). Made in a
 * private temporary directory, removed after; checked to be plain key text, as it goes into a guest script.
 */
export async function generateHostKey(runner: Runner): Promise<HostKeyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'banger-hostkey-'));
  try {
    const path = join(dir, 'key');
    await runner.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', path]);
    const privateKey = await readFile(path, 'utf8');
    const publicKey = (await readFile(`${path}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    if (!PRIVATE.test(privateKey) || !PUBLIC.test(publicKey))
      throw operationFailed('ssh-keygen wrote a host key banger does not recognise');
    return { privateKey, publicKey };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether a key pair is the plain text generateHostKey makes (what a guest script may carry). */
export const isPlainHostKey = (k: HostKeyPair): boolean =>
  PRIVATE.test(k.privateKey) && PUBLIC.test(k.publicKey);
