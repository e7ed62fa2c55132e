/** Reaching a daemon of our version, starting one in user mode: shared by the CLI and the SDK. */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Layout } from '../config/index.js';
import { ensureRuntimeDir } from '../config/paths.js';
import type { Runner } from '../host/runner.js';
import { BangerError } from '../model/errors.js';
import {
  ConnectionLostError,
  createRpcClient,
  DaemonUnreachableError,
  DaemonVersionError,
  type RpcClient,
} from './client.js';

/**
 * How long the CLI waits for a daemon it started to answer `ping`. It answers in well under a second on an
 * idle host; the margin is for a loaded one (a daemon that exits early is reported at once, not after this).
 */
export const DAEMON_START_TIMEOUT_MS = 15_000;
const PING_TIMEOUT_MS = 5_000;

export interface EnsureDaemonOptions {
  layout: Layout;
  version: string;
  runner: Runner;
  /** Tells the user what is happening (stderr), e.g. "starting bangerd". */
  notice?: (message: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A client for a daemon of our own version. In user mode a missing daemon is started (detached, so it
 * outlives this CLI) and a daemon of another version is asked to stop and replaced; a newcomer never
 * starts bangerd by hand. System mode never auto-starts: systemd owns the daemon there.
 */
export async function ensureDaemon(options: EnsureDaemonOptions): Promise<RpcClient> {
  const { layout, version } = options;
  const client = createRpcClient(layout.socketPath, version);
  const running = await pingVersion(client);
  if (running === version) return client;
  if (running !== undefined) {
    options.notice?.(`restarting bangerd (running ${running}, this banger is ${version})`);
    await client.call('shutdown', {}, { timeoutMs: PING_TIMEOUT_MS }).catch(() => {});
    await waitFor(async () => !existsSync(layout.socketPath) || (await pingVersion(client)) === undefined);
  }
  if (layout.mode === 'system') {
    throw new BangerError('not_running', `bangerd is not running on ${layout.socketPath}`, {
      hint: 'sudo systemctl start bangerd',
    });
  }
  await startDaemonProcess(options);
  return client;
}

/**
 * A client that calls the daemon straight away and runs `ensureDaemon` only when that fails because none
 * answers or it is of another version: both are refused before the call runs, so the call is then made
 * again. Saves the `ping` round trip every CLI call paid before its own. A call that streams stdin is not
 * retried (what it read is gone): it ensures the daemon first, as before.
 */
export function optimisticDaemonClient(options: EnsureDaemonOptions): RpcClient {
  const direct = createRpcClient(options.layout.socketPath, options.version);
  let ensured: Promise<RpcClient> | undefined;
  const ensure = () => {
    ensured ??= ensureDaemon(options);
    return ensured;
  };
  return {
    async call(method, params, callOptions) {
      if (ensured || callOptions?.stdin) return (await ensure()).call(method, params, callOptions);
      try {
        return await direct.call(method, params, callOptions);
      } catch (err) {
        if (!(err instanceof DaemonUnreachableError || err instanceof DaemonVersionError)) throw err;
        return (await ensure()).call(method, params, callOptions);
      }
    },
  };
}

async function pingVersion(client: RpcClient): Promise<string | undefined> {
  try {
    return (await client.call('ping', {}, { timeoutMs: PING_TIMEOUT_MS })).version;
  } catch (err) {
    // A daemon that is stopping may accept and then drop the connection: as good as gone.
    if (err instanceof DaemonUnreachableError || err instanceof ConnectionLostError) return undefined;
    throw err;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = DAEMON_START_TIMEOUT_MS): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

async function startDaemonProcess({ layout, version, runner, notice }: EnsureDaemonOptions): Promise<void> {
  notice?.('starting bangerd');
  ensureRuntimeDir(layout.runtimeDir);
  mkdirSync(layout.stateDir, { recursive: true, mode: 0o700 });
  const outPath = join(layout.stateDir, 'bangerd.out');
  const daemonMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'daemon', 'main.js');
  const child = runner.spawn([process.execPath, daemonMain], { detached: true, logPath: outPath });
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const client = createRpcClient(layout.socketPath, version);
  const ready = await waitFor(async () => {
    if (exited !== undefined && exited !== 3) return true; // 3: another daemon won the race; keep pinging
    return (await pingVersion(client)) === version;
  });
  if (ready && (exited === undefined || exited === 3)) return;
  const tail = readTail(outPath);
  throw new BangerError('operation_failed', `bangerd did not start${tail ? `: ${tail}` : ''}`, {
    hint: `see ${layout.logPath}`,
  });
}

function readTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' / ');
  } catch {
    return '';
  }
}
