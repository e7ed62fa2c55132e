import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Runner } from '../host/index.js';

/**
 * banger's own ed25519 key (OpenSSH format, 0600), made on first use so a user's keys are never touched.
 * Returns the public key line. ssh-keygen writes both files; a crash between them leaves a private key
 * without .pub, which is regenerated from it.
 */
export async function ensureSshKey(runner: Runner, keyPath: string): Promise<string> {
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  if (!existsSync(keyPath)) {
    await runner.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'banger', '-f', keyPath]);
  } else if (!existsSync(`${keyPath}.pub`)) {
    const pub = await runner.run(['ssh-keygen', '-y', '-f', keyPath]);
    return pub.stdout.trim();
  }
  return (await readFile(`${keyPath}.pub`, 'utf8')).trim();
}
