import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BangerError } from '../../src/model/errors.js';
import {
  ConnectionLostError,
  createSharedRpcClient,
  DaemonUnreachableError,
  type Handlers,
  Operations,
  type RpcServer,
  startRpcServer,
} from '../../src/rpc/index.js';

// The SDK's one-connection client against the real RPC server: many calls share one connection, an abort
// cancels only its own call in the daemon, a daemon that goes away fails the calls in flight with the
// one-call client's errors and the next call connects again, and an idle client lets a script exit.
const VERSION = '0.0.0-test';
let dir: string | undefined;
let server: RpcServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A guard against a hang, not a timing assertion. */
function guard<T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Served {
  path: string;
  /** Why each `vm.exec` call's signal fired, by argv[0]. */
  cancelled: Map<string, unknown>;
}

async function serve(path?: string): Promise<Served> {
  dir ??= await mkdtemp(join(tmpdir(), 'banger-shared-client-'));
  const socketPath = path ?? join(dir, 'bangerd.sock');
  const cancelled = new Map<string, unknown>();
  const handlers = {
    ping: async () => ({ version: VERSION, pid: process.pid, uptimeMs: 1 }),
    // argv[0] 'echo' answers with output at once; 'hang' waits for its cancel.
    'vm.exec': async ({ argv }: { argv: string[] }, ctx) => {
      const [cmd = '', ...rest] = argv;
      if (cmd === 'echo') {
        ctx.output('stdout', Buffer.from(rest.join(' ')));
        return { exitCode: 0, signal: null };
      }
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          cancelled.set(rest[0] ?? cmd, ctx.signal.reason);
          resolve();
        });
      });
      throw ctx.signal.reason;
    },
  } as Partial<Handlers> as Handlers;
  server = await startRpcServer({
    socketPath,
    handlers,
    version: VERSION,
    log: pino({ level: 'silent' }),
    operations: new Operations(),
  });
  return { path: socketPath, cancelled };
}

/** A unix-socket relay in front of `target` that counts the connections made through it. */
async function countingRelay(
  target: string,
): Promise<{ path: string; count: () => number; close: () => void }> {
  const path = join(dir as string, 'relay.sock');
  let count = 0;
  const relay = createServer((s) => {
    count++;
    const u = createConnection(target);
    s.pipe(u).pipe(s);
    s.on('error', () => u.destroy());
    u.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => relay.listen(path, r));
  return { path, count: () => count, close: () => relay.close() };
}

const echo = (client: ReturnType<typeof createSharedRpcClient>, text: string) => {
  const out: Buffer[] = [];
  return client
    .call('vm.exec', { ref: 'v', argv: ['echo', text] }, { onOutput: (_s, d) => out.push(d) })
    .then((exit) => ({ exit, out: Buffer.concat(out).toString() }));
};

describe('the shared RPC client', () => {
  it('runs many calls at once on one connection, each with its own output and result', async () => {
    const relay = await countingRelay((await serve()).path);
    const client = createSharedRpcClient(relay.path, VERSION);
    try {
      const texts = Array.from({ length: 20 }, (_, i) => `call-${i}`);
      const results = await guard(Promise.all(texts.map((t) => echo(client, t))), 'echo calls');
      expect(results.map((r) => r.out)).toEqual(texts);
      for (const r of results) expect(r.exit).toEqual({ exitCode: 0, signal: null });
      expect(await guard(client.call('ping', {}), 'ping')).toMatchObject({ version: VERSION });
      expect(relay.count()).toBe(1);
    } finally {
      client.close();
      relay.close();
    }
  });

  it('an abort cancels only its call in the daemon; the connection serves the next', async () => {
    const { path, cancelled } = await serve();
    const client = createSharedRpcClient(path, VERSION);
    try {
      const abort = new AbortController();
      const hung = client.call('vm.exec', { ref: 'v', argv: ['hang', 'a'] }, { signal: abort.signal });
      const other = client.call('vm.exec', { ref: 'v', argv: ['hang', 'b'] }, { timeoutMs: 60_000 });
      expect((await echo(client, 'before')).out).toBe('before'); // both hung calls are in the daemon now
      abort.abort();
      const err = await guard(
        hung.catch((e: unknown) => e),
        'aborted call',
      );
      expect(err).toBeInstanceOf(BangerError);
      expect((err as BangerError).code).toBe('cancelled');
      // The daemon saw the cancel for that call only.
      await guard(
        (async () => {
          while (!cancelled.has('a')) await new Promise((r) => setTimeout(r, 20));
        })(),
        'cancel in the daemon',
      );
      expect((cancelled.get('a') as BangerError).code).toBe('cancelled');
      expect(cancelled.has('b')).toBe(false);
      expect((await guard(echo(client, 'after'), 'echo after abort')).out).toBe('after');
      // A timeout cancels in the daemon as well.
      const timed = client.call('vm.exec', { ref: 'v', argv: ['hang', 'c'] }, { timeoutMs: 200 });
      await expect(guard(timed, 'timed call')).rejects.toMatchObject({ message: 'vm.exec timed out' });
      await guard(
        (async () => {
          while (!cancelled.has('c')) await new Promise((r) => setTimeout(r, 20));
        })(),
        'timeout cancel in the daemon',
      );
      expect(cancelled.has('b')).toBe(false);
      client.close();
      await expect(guard(other, 'call open at close')).rejects.toBeInstanceOf(ConnectionLostError);
    } finally {
      client.close();
    }
  });

  it('a daemon that goes away fails the calls in flight, and the next call connects again', async () => {
    const { path } = await serve();
    const client = createSharedRpcClient(path, VERSION);
    try {
      expect((await echo(client, 'one')).out).toBe('one');
      const inFlight = client.call('vm.exec', { ref: 'v', argv: ['hang', 'x'] }).catch((e: unknown) => e);
      await echo(client, 'sync'); // the hung call reached the daemon
      await server?.close();
      server = undefined;
      const err = await guard(inFlight, 'call at daemon stop');
      expect(err).toBeInstanceOf(ConnectionLostError);
      expect((err as Error).message).toContain('during vm.exec');
      await expect(guard(client.call('ping', {}), 'ping, no daemon')).rejects.toBeInstanceOf(
        DaemonUnreachableError,
      );
      await serve(path);
      expect((await guard(echo(client, 'two'), 'echo after restart')).out).toBe('two');
    } finally {
      client.close();
    }
  });

  it('refuses calls after close, and an already aborted call is never sent', async () => {
    const { path, cancelled } = await serve();
    const client = createSharedRpcClient(path, VERSION);
    const abort = new AbortController();
    abort.abort();
    await expect(
      client.call('vm.exec', { ref: 'v', argv: ['hang', 'never'] }, { signal: abort.signal }),
    ).rejects.toMatchObject({ code: 'cancelled' });
    expect((await echo(client, 'x')).out).toBe('x');
    expect(cancelled.has('never')).toBe(false);
    client.close();
    await expect(client.call('ping', {})).rejects.toMatchObject({ code: 'operation_failed' });
  });

  it('refuses a second call with the id of one still running, and the first one is unharmed', async () => {
    const { path, cancelled } = await serve();
    const sock = createConnection(path);
    const replies: Record<string, unknown>[] = [];
    let buffered = '';
    const arrived = new Set<() => void>();
    sock.on('data', (chunk) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        replies.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
        buffered = buffered.slice(nl + 1);
      }
      for (const wake of arrived) wake();
    });
    const reply = (count: number) =>
      guard(
        new Promise<void>((resolve) => {
          const check = () => {
            if (replies.length >= count) {
              arrived.delete(check);
              resolve();
            }
          };
          arrived.add(check);
          check();
        }),
        `reply ${count}`,
      );
    const call = (argv: string[]) =>
      `${JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'vm.exec', params: { ref: 'v', argv }, meta: { version: VERSION } })}\n`;
    try {
      sock.write(call(['hang', 'first']));
      sock.write(call(['echo', 'second']));
      await reply(1);
      expect(replies[0]).toMatchObject({ id: 7, error: { data: { code: 'bad_request' } } });
      expect(JSON.stringify(replies[0])).toContain('a call with this id is running');
      // The first call still runs: it ends only when it is cancelled, and answers under its id.
      expect(cancelled.has('first')).toBe(false);
      sock.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'input', params: { id: 7, cancel: true } })}\n`);
      await reply(2);
      expect(cancelled.has('first')).toBe(true);
      expect(replies[1]).toMatchObject({ id: 7, error: { data: { code: 'cancelled' } } });
      // With the first call done, the id is free again.
      sock.write(call(['echo', 'third']));
      await reply(4);
      expect(replies.slice(2)).toMatchObject([
        {
          method: 'output',
          params: { id: 7, stream: 'stdout', data: Buffer.from('third').toString('base64') },
        },
        { id: 7, result: { exitCode: 0 } },
      ]);
    } finally {
      sock.destroy();
    }
  });

  it('an idle client does not keep a script running', async () => {
    const { path } = await serve();
    const script = join(dir as string, 'script.mts');
    const clientModule = join(import.meta.dirname, '../../src/rpc/index.js');
    await writeFile(
      script,
      `import { createSharedRpcClient } from ${JSON.stringify(clientModule)};\n` +
        `const c = createSharedRpcClient(${JSON.stringify(path)}, ${JSON.stringify(VERSION)});\n` +
        `const r = await c.call('ping', {});\nconsole.log(r.version);\n`,
    );
    const tsx = join(import.meta.dirname, '../../node_modules/.bin/tsx');
    const out = await guard(
      new Promise<string>((resolve, reject) =>
        execFile(tsx, [script], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
      ),
      'script exit',
      90_000,
    );
    expect(out.trim()).toBe(VERSION);
  }, 120_000);
});
