import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Layout } from '../config/paths.js';
import { PRIV_HELPER_DEFAULT_SOCKET } from '../host/priv/socket-path.js';
import type { LocalUser } from '../host/users.js';
import { BangerError, badRequest, operationFailed } from '../model/errors.js';

export interface SystemRunInputs {
  owner: LocalUser;
  layout: Layout;
  env: NodeJS.ProcessEnv;
  node: string;
  packageRoot: string;
  say: (line: string) => void;
}

/** How long the helper may take to listen before `system run` gives up (a loaded host, a cold node). */
const HELPER_START_MS = 60_000;

/**
 * `banger system run`: bangerd-root as root and bangerd as the owner, in the foreground, without systemd.
 * With BANGER_HOME the whole instance (and the helper's socket and id) lives under it; otherwise the
 * system layout. SIGINT or SIGTERM stops the daemon, then the helper; if either dies the other is stopped.
 * Resolves to the exit code.
 */
export async function systemRun(input: SystemRunInputs): Promise<number> {
  const { owner, layout, env, node, packageRoot, say } = input;
  if (process.geteuid?.() !== 0) {
    throw new BangerError('unauthorized', 'banger system run must run as root', {
      hint: 'run it with sudo: the helper needs root, and the daemon is then dropped to --owner',
    });
  }
  if (owner.uid === 0) throw badRequest('--owner must not be root: the daemon is meant to run unprivileged');
  const { socket, idFile } = helperPaths(env);
  prepareOwnerDirs(layout, owner);

  // A socket left by an earlier run must not pass for this helper's.
  rmSync(socket, { force: true });
  const helperArgs = ['--owner', String(owner.uid), '--socket', socket, '--state-dir', layout.stateDir];
  const helper = spawn(node, [join(packageRoot, 'bin', 'bangerd-root'), ...helperArgs, '--id-file', idFile], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitForSocket(helper, socket);
  // --system always: the daemon then refuses to run as root (with BANGER_HOME the layout still follows it).
  const daemon = spawn(node, [join(packageRoot, 'bin', 'bangerd'), '--system'], {
    uid: owner.uid,
    gid: owner.gid,
    env: {
      ...env,
      HOME: owner.home,
      USER: owner.name,
      LOGNAME: owner.name,
      BANGER_PRIV_HELPER_SOCKET: socket,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  say(
    `bangerd-root pid ${helper.pid} (root) on ${socket}; bangerd pid ${daemon.pid} as ${owner.name} (uid ${owner.uid}); Ctrl-C stops both`,
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await terminate(daemon);
    await terminate(helper);
  };
  const onSignal = () => void stop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const first = await Promise.race([once(daemon, 'exit'), once(helper, 'exit')]);
  const unexpected = !stopping;
  if (unexpected) say(`a process exited on its own (${first.join(' ')}); stopping the other`);
  await stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return unexpected ? 1 : 0;
}

/** The helper's socket and id file: under BANGER_HOME when set (an isolated instance), else the system ones. */
export function helperPaths(env: NodeJS.ProcessEnv): { socket: string; idFile: string } {
  const home = env.BANGER_HOME;
  return {
    socket: home ? join(home, 'run-root', 'bangerd-root.sock') : PRIV_HELPER_DEFAULT_SOCKET,
    idFile: home ? join(home, 'state-root', 'instance-id') : '/var/lib/banger-root/instance-id',
  };
}

/**
 * The owner's state, cache and runtime dirs, made and owned by the owner; the config dir root-owned and
 * readable. An existing dir owned by someone else (a root-mode install) is refused, never taken over.
 */
function prepareOwnerDirs(layout: Layout, owner: LocalUser): void {
  mkdirSync(layout.configDir, { recursive: true, mode: 0o755 });
  for (const dir of [layout.stateDir, layout.cacheDir, layout.runtimeDir]) {
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chownSync(dir, owner.uid, owner.gid);
    }
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== owner.uid) {
      throw operationFailed(`${dir} is owned by uid ${st.uid}, not ${owner.name} (uid ${owner.uid})`, {
        hint: `hand it over with: chown -R ${owner.name} ${dir}`,
      });
    }
  }
}

async function waitForSocket(helper: ChildProcess, socket: string): Promise<void> {
  const deadline = Date.now() + HELPER_START_MS;
  while (!existsSync(socket) || !lstatSync(socket).isSocket() || lstatSync(socket).uid === 0) {
    if (helper.exitCode !== null || helper.signalCode !== null) {
      throw operationFailed(
        `bangerd-root exited before it listened (${helper.exitCode ?? helper.signalCode})`,
      );
    }
    if (Date.now() > deadline) {
      helper.kill('SIGTERM');
      throw operationFailed(`bangerd-root did not listen on ${socket} within ${HELPER_START_MS / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM and wait; SIGKILL after 30 s. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}
