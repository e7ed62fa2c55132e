/**
 * The ssh client options for reaching a guest, in one list so that `vm ssh` (argv) and the generated
 * ssh_config (`ssh NAME.vm`) cannot drift apart. Host keys are pinned trust-on-first-use in banger's own
 * known_hosts through the agent (pinHostKey), so ssh must refuse any key it has not pinned: `yes`, never
 * `accept-new`, which would let whoever answers first at a reused address plant its key.
 */
function clientOptions(keyPath: string, knownHostsPath: string): ReadonlyArray<readonly [string, string]> {
  return [
    ['IdentityFile', keyPath],
    ['IdentitiesOnly', 'yes'],
    ['UserKnownHostsFile', knownHostsPath],
    ['StrictHostKeyChecking', 'yes'],
    ['HostKeyAlgorithms', 'ssh-ed25519'],
    ['LogLevel', 'ERROR'],
  ];
}

/** The options as ssh arguments (`-o Key=value`). */
export function sshOptions(keyPath: string, knownHostsPath: string): string[] {
  return clientOptions(keyPath, knownHostsPath).flatMap(([key, value]) => ['-o', `${key}=${value}`]);
}

/** The options as indented ssh_config lines; values are quoted so a path with spaces stays one argument. */
export function sshConfigLines(keyPath: string, knownHostsPath: string): string[] {
  return clientOptions(keyPath, knownHostsPath).map(([key, value]) =>
    /^[A-Za-z0-9-]+$/.test(value) ? `  ${key} ${value}` : `  ${key} "${value}"`,
  );
}
