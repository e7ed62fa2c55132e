import { loadConfig } from '../../config/index.js';
import { bangerVersion } from '../../config/version.js';
import { helloPrivHelper } from '../../host/priv/remote.js';
import { createRpcClient } from '../../rpc/index.js';
import type { Check } from './checks.js';

const NAME = 'privileges';

/**
 * The posture: root user mode (the daemon does its privileged work itself, so every parser in it runs as
 * root) or the split (priv_helper_socket names a bangerd-root, which must answer, at banger's version).
 */
export const checkPrivileges: Check = async ({ layout }) => {
  let socket: string;
  try {
    socket = (await loadConfig(layout.configFile)).priv_helper_socket;
  } catch {
    return { name: NAME, status: 'WARN', details: ['config unreadable (see the config row)'] };
  }
  if (!socket) {
    return {
      name: NAME,
      status: 'WARN',
      details: ['root user mode: the daemon runs as root and does its privileged operations itself'],
      hint: 'for the safer split, run bangerd-root and set priv_helper_socket (sudo banger system run --owner USER); see docs/privileges.md',
    };
  }
  try {
    const hello = await helloPrivHelper(socket);
    const details = [`split: bangerd-root ${hello.version} on ${socket}, serving uid ${hello.ownerUid}`];
    // The daemon that uses the helper, when it runs: both must come from one install.
    const daemon = await createRpcClient(layout.socketPath, bangerVersion())
      .call('ping', {}, { timeoutMs: 5000 })
      .catch(() => undefined);
    if (daemon && daemon.version !== hello.version) {
      return {
        name: NAME,
        status: 'WARN',
        details: [...details, `bangerd (pid ${daemon.pid}) is ${daemon.version}`],
        hint: 'restart both from this install: sudo banger system restart (or restart banger system run)',
      };
    }
    if (daemon) details.push(`bangerd ${daemon.version} (pid ${daemon.pid}) uses it`);
    if (hello.version !== bangerVersion()) {
      return {
        name: NAME,
        status: 'WARN',
        details: [...details, `this banger is ${bangerVersion()}`],
        hint: 'restart bangerd-root from this install (banger system run, or systemctl restart bangerd-root)',
      };
    }
    return { name: NAME, status: 'PASS', details };
  } catch (err) {
    return {
      name: NAME,
      status: 'FAIL',
      details: [`priv_helper_socket = ${socket}: ${(err as Error).message}`],
      hint: 'start bangerd-root (sudo banger system run --owner USER), or run doctor as its owner',
    };
  }
};
