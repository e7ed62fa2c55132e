/** ssh: banger's key and its TOFU known_hosts. */

export { sshConfigLines, sshOptions } from './client-options.js';
export { generateHostKey, type HostKeyPair, isPlainHostKey } from './host-key.js';
export { ensureSshKey } from './keys.js';
export { forgetHost, hostKeyMismatch, pinHostKey, pinnedKey } from './known-hosts.js';
