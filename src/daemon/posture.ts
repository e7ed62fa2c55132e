import type { Config } from '../config/index.js';
import { BangerError, badRequest } from '../model/errors.js';

/**
 * How this daemon holds its privileges: `root` (the user mode: it runs every privileged command itself)
 * or `owner` (it runs as an unprivileged user and bangerd-root does the privileged operations).
 */
export type Posture = 'root' | 'owner';

/**
 * Refuses the combinations that cannot work or defeat the split, before anything is opened:
 * - system mode (`bangerd --system`, what `banger system run` and the units start) as root: the point of
 *   system mode is that no parser of images, registries or guests runs as root;
 * - the daemon as its owner without a helper: it could make no bridge, tap or loop device;
 * - the daemon as its owner with config `netns`: entering a namespace (`ip netns exec`, which QEMU, link
 *   reads and the stats would need) takes CAP_SYS_ADMIN; the whole instance runs in the namespace instead.
 */
export function checkPosture(input: { config: Config; euid: number; system: boolean }): Posture {
  const { config, euid, system } = input;
  if (euid === 0) {
    if (system) {
      throw new BangerError('unauthorized', 'bangerd --system refuses to run as root', {
        hint:
          'in system mode the daemon runs as its owner and bangerd-root does the privileged work: start both ' +
          'with `banger system run --owner USER` (or the units of `banger system install`); for a one-machine ' +
          'dev setup run bangerd without --system',
      });
    }
    return 'root';
  }
  if (!config.priv_helper_socket) {
    throw new BangerError('unauthorized', `bangerd runs as uid ${euid} but no root helper is configured`, {
      hint:
        'bridges, taps, NAT and loop devices need root: run the daemon as root, or start it with its helper ' +
        '(`banger system run --owner USER` as root sets priv_helper_socket for it)',
    });
  }
  if (config.netns) {
    throw badRequest(`config netns = "${config.netns}" needs root: this daemon runs as its owner`, {
      hint:
        'entering a namespace takes CAP_SYS_ADMIN; run the whole instance inside it instead: ' +
        `ip netns exec ${config.netns} banger system run --owner USER, and drop netns from config.toml`,
    });
  }
  return 'owner';
}
