import type { Runner } from '../runner.js';

/**
 * `net.ipv4.ip_forward` is per network namespace; `sysctl` run inside the namespace (ip netns exec) sets
 * that namespace's value, so tests never flip the host's.
 */
export async function setIpForward(runner: Runner, enabled: boolean, netns?: string): Promise<void> {
  const want = enabled ? '1' : '0';
  const cur = await runner.run(['sysctl', '-n', 'net.ipv4.ip_forward'], { netns });
  if (cur.stdout.trim() === want) return;
  await runner.run(['sysctl', '-q', '-w', `net.ipv4.ip_forward=${want}`], { netns });
}
