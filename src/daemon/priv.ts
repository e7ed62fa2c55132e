import type { Config } from '../config/index.js';
import {
  createInProcessPrivOps,
  createRemotePrivOps,
  type PrivOps,
  type Runner,
  validateSignal,
} from '../host/index.js';
import { signalPid } from '../host/priv/signal.js';
import { validateProcessProof } from '../host/priv/validate.js';
import { processUids } from '../host/proc.js';

/**
 * The daemon's privileged operations: in-process (the daemon is root) unless `priv_helper_socket` names a
 * running bangerd-root, which then does every one of them except signalling a process of the daemon's own
 * uid, which needs no privilege (the proof is checked all the same).
 */
export function createDaemonPrivOps(input: { config: Config; runner: Runner; stateDir: string }): PrivOps {
  const { config, runner, stateDir } = input;
  if (!config.priv_helper_socket) return createInProcessPrivOps({ runner, stateDir });
  const remote = createRemotePrivOps({ socketPath: config.priv_helper_socket });
  const ownUid = process.geteuid?.() ?? 0;
  return {
    ...remote,
    async signalProcess(req) {
      const signal = validateSignal(req.signal);
      const proof = validateProcessProof(req);
      const uids = processUids(proof.pid);
      // Gone, or ours: no privilege needed (signalPid reports `gone` itself). Only another uid's process goes
      // to the helper, which refuses it unless it is the owner's (the daemon runs as the owner).
      if (!uids || (uids.real === ownUid && uids.effective === ownUid))
        return signalPid(proof, signal, ownUid);
      return remote.signalProcess(req);
    },
  };
}
