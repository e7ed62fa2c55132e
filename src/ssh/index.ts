/** ssh: banger's key and its TOFU known_hosts. */
export { ensureSshKey } from './keys.js';
export { forgetHost, hostKeyMismatch, pinHostKey, pinnedKey, sshOptions } from './known-hosts.js';
