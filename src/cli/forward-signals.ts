import { EventEmitter } from 'node:events';
import { BangerError } from '../model/errors.js';
import { FORWARDED_SIGNALS } from '../rpc/wire.js';

export interface ForwardedSignals {
  /** Pass as the call's `controls`: emits 'signal' with the name (`INT`, …) for the daemon. */
  controls: EventEmitter;
  /** Pass as the call's `signal`: aborted by a second Ctrl-C. */
  abort: AbortSignal;
  /** Restores the default handlers. */
  done(): void;
}

/**
 * While a command runs in a guest through the daemon (`vm run -- cmd`, `vm exec`), the signals banger gets
 * are the command's: Ctrl-C, SIGTERM, SIGHUP and SIGQUIT are forwarded to it (before it has started, the
 * daemon cancels the run instead), so it can clean up and its exit status says what happened. A second
 * Ctrl-C gives up waiting: the call is cancelled, which kills the command and, with `--rm`, deletes the VM.
 */
export function forwardSignals(): ForwardedSignals {
  const controls = new EventEmitter();
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGINT' && ++interrupts > 1)
      controller.abort(
        new BangerError('cancelled', 'gave up on the command at the second Ctrl-C; it is killed'),
      );
    else controls.emit('signal', sig.slice(3));
  };
  for (const name of FORWARDED_SIGNALS) process.on(`SIG${name}`, onSignal);
  return {
    controls,
    abort: controller.signal,
    done() {
      for (const name of FORWARDED_SIGNALS) process.off(`SIG${name}`, onSignal);
    },
  };
}
