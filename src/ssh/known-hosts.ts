import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Runner } from '../host/index.js';
import { BangerError } from '../model/errors.js';

export async function forgetHost(runner: Runner, knownHostsPath: string, host: string): Promise<void> {
  if (!existsSync(knownHostsPath)) return;
  await runner.run(['ssh-keygen', '-q', '-R', host, '-f', knownHostsPath], { allowFailure: true });
}

/** The key pinned for `host` in banger's known_hosts (`type base64`), if any. */
export async function pinnedKey(knownHostsPath: string, host: string): Promise<string | undefined> {
  const text = await readFile(knownHostsPath, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [hosts, type, key] = line.trim().split(/\s+/);
    if (hosts && type && key && hosts.split(',').includes(host)) return `${type} ${key}`;
  }
  return undefined;
}

/**
 * Pins a guest's host key trust-on-first-use (read through the agent, so no network scan is trusted). The
 * same key again is a no-op; a different one is refused with what to do, never silently replaced.
 */
export function pinHostKey(knownHostsPath: string, host: string, keyLine: string): Promise<void> {
  // One writer at a time: concurrent starts would otherwise lose each other's lines.
  const next = pinning.then(() => pinOne(knownHostsPath, host, keyLine));
  pinning = next.catch(() => {});
  return next;
}

let pinning: Promise<void> = Promise.resolve();

async function pinOne(knownHostsPath: string, host: string, keyLine: string): Promise<void> {
  const pinned = await pinnedKey(knownHostsPath, host);
  if (pinned === keyLine) return;
  if (pinned) throw hostKeyMismatch(knownHostsPath, host);
  await mkdir(dirname(knownHostsPath), { recursive: true, mode: 0o700 });
  const text = await readFile(knownHostsPath, 'utf8').catch(() => '');
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  await writeFileAtomic(knownHostsPath, `${text}${sep}${host} ${keyLine}\n`, { mode: 0o600 });
}

export function hostKeyMismatch(knownHostsPath: string, host: string): BangerError {
  return new BangerError(
    'operation_failed',
    `the guest at ${host} has a different ssh host key than the one banger pinned for it`,
    {
      hint: `if the guest's host key was changed on purpose, forget the old one with: ssh-keygen -R ${host} -f ${knownHostsPath}`,
    },
  );
}
