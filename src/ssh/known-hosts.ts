import { existsSync } from 'node:fs';
import type { Runner } from '../host/index.js';

/**
 * Host keys are pinned trust-on-first-use in banger's own known_hosts: ssh itself records the key on the
 * first connection (`StrictHostKeyChecking=accept-new`) and refuses a changed one. A deleted VM's address
 * is reused by the next VM, so delete forgets its entry.
 */
export function sshOptions(keyPath: string, knownHostsPath: string): string[] {
  return [
    '-i',
    keyPath,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    'LogLevel=ERROR',
  ];
}

export async function forgetHost(runner: Runner, knownHostsPath: string, host: string): Promise<void> {
  if (!existsSync(knownHostsPath)) return;
  await runner.run(['ssh-keygen', '-q', '-R', host, '-f', knownHostsPath], { allowFailure: true });
}
