/**
 * The agent binary run on the host as a normal process, serving a unix socket (`--listen-unix`): the same
 * code and protocol as in a guest, without booting one. Exercises exec (streams, exit codes, signals, PTY,
 * users), files, ports, the per-VM settings, and hostile frames, several at once on one connection.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentClient,
  agentBinaryPath,
  connectAgent,
  type ExecRequest,
  encodeFrame,
  FrameDecoder,
  FrameType,
  waitForAgent,
} from '../../src/guest/index.js';
import { createRunner } from '../../src/host/index.js';

const runner = createRunner();
/** A cap no file of these tests reaches. */
const BIG = { maxBytes: 64 * 1024 * 1024, timeoutMs: 60_000 };

async function probe(): Promise<string | undefined> {
  if (!existsSync(agentBinaryPath())) {
    const built = await runner.run(['make', '-s', '-C', join(agentBinaryPath(), '..', '..')], {
      allowFailure: true,
    });
    if (built.exitCode !== 0) return `the agent does not build: ${built.stderr.trim()}`;
  }
  if (process.getuid?.() !== 0) return 'not root (exec as another user needs root)';
  return undefined;
}
const skipReason = await probe();
if (skipReason) console.warn(`guest-agent host tests skipped: ${skipReason}`);

async function run(client: AgentClient, req: ExecRequest, stdin?: string | Buffer | Readable) {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (d: Buffer) => chunks.out.push(d));
  err.on('data', (d: Buffer) => chunks.err.push(d));
  const input = stdin === undefined ? undefined : stdin instanceof Readable ? stdin : Readable.from([stdin]);
  const result = await client.exec(req, { stdin: input, stdout: out, stderr: err }).wait();
  const stdout = Buffer.concat(chunks.out);
  return {
    ...result,
    stdout: stdout.toString(),
    stdoutBytes: stdout,
    stderr: Buffer.concat(chunks.err).toString(),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  // A guard against hanging forever, not a timing assertion.
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe.skipIf(skipReason !== undefined)('banger-agent on the host over a unix socket', () => {
  let work: string;
  let agent: ChildProcess;
  let socketPath: string;
  let client: AgentClient;
  let agentLog = '';

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'banger-agent-host-'));
    socketPath = join(work, 'agent.sock');
    agent = runner.spawn([agentBinaryPath(), '--listen-unix', socketPath], { pipe: true });
    agent.stderr?.on('data', (d: Buffer) => {
      agentLog += d.toString();
    });
    agent.stdin?.end();
    await until(() => existsSync(socketPath), 'the agent socket');
    client = await waitForAgent({ kind: 'virtio-serial', socketPath }, { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    client?.close();
    if (agent && agent.exitCode === null) {
      const gone = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await gone;
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('reports health and listening ports', async () => {
    const health = await client.health();
    expect(health.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(health.pid).toBe(agent.pid);
    expect(health.pid1).toBe(false);
    expect(health.bootPhasesMs.transportReady).toBeGreaterThan(0);

    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const ports = await client.ports();
      expect(ports).toContainEqual(expect.objectContaining({ protocol: 'tcp', address: '127.0.0.1', port }));
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('accepts many connections opened at once, each served', async () => {
    // The agent is held stopped while the connections arrive, as a busy guest may be: they wait in the
    // listen backlog, which must be deep enough (a backlog of 16 made the rest fail with EAGAIN).
    agent.kill('SIGSTOP');
    const connecting = Promise.allSettled(
      Array.from({ length: 64 }, () => connectAgent({ kind: 'virtio-serial', socketPath })),
    );
    await new Promise((r) => setTimeout(r, 200));
    agent.kill('SIGCONT');
    const settled = await connecting;
    const clients = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    try {
      expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
      const pids = await Promise.all(clients.map(async (c) => (await c.health()).pid));
      expect(new Set(pids)).toEqual(new Set([agent.pid]));
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('runs many commands at once on one connection, each with its own streams and exit status', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const [codes, stdinEcho, killed, large, env, cwd, user, ...parallel] = await Promise.all([
      run(client, { argv: ['sh', '-c', 'echo out; echo err >&2; exit 42'] }),
      run(client, { argv: ['sha256sum'] }, big),
      run(client, { argv: ['sh', '-c', 'kill -KILL $$'] }),
      run(client, { argv: ['sh', '-c', 'head -c 8000000 /dev/zero'] }),
      run(client, { argv: ['sh', '-c', 'echo "$GREETING:$HOME"'], env: { GREETING: 'hi there' } }),
      run(client, { argv: ['pwd'], cwd: work }),
      run(client, { argv: ['id', '-u'], user: 'nobody' }),
      ...Array.from({ length: 8 }, (_, i) => run(client, { argv: ['sh', '-c', `sleep 0.$i; echo ${i}`] })),
    ]);
    expect(codes).toMatchObject({ exitCode: 42, signal: null, stdout: 'out\n', stderr: 'err\n' });
    expect(stdinEcho.stdout.split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'));
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    expect(large.stdoutBytes.length).toBe(8_000_000);
    expect(env.stdout).toBe('hi there:/root\n');
    expect(cwd.stdout).toBe(`${work}\n`);
    expect(user.stdout.trim()).toBe('65534');
    expect(parallel.map((r) => [r.exitCode, r.stdout])).toEqual(parallel.map((_, i) => [0, `${i}\n`]));
  });

  it('delivers every byte to a slow reader before wait() resolves, and the connection keeps serving', async () => {
    let got = 0;
    const slow = new Writable({
      highWaterMark: 4096,
      write(chunk: Buffer, _enc, cb) {
        got += chunk.length;
        setTimeout(cb, 1);
      },
    });
    const [r, other] = await Promise.all([
      client
        .exec({ argv: ['head', '-c', '3000000', '/dev/zero'] }, { stdout: slow, stderr: new PassThrough() })
        .wait(),
      run(client, { argv: ['echo', 'shared connection still works'] }),
    ]);
    expect(r).toEqual({ exitCode: 0, signal: null });
    expect(got).toBe(3_000_000);
    expect(other.stdout).toBe('shared connection still works\n');
  });

  it('forwards signals and stdin end-of-file', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    // A trapped signal reaches the shell (its process group), which then exits on its own terms.
    const trapped = client.exec(
      { argv: ['sh', '-c', 'trap "echo got-usr1; exit 3" USR1; echo ready; while :; do sleep 0.05; done'] },
      { stdout: out, stderr: new PassThrough() },
    );
    await until(() => text.includes('ready'), 'the trap to be installed');
    trapped.signal('SIGUSR1');
    expect(await trapped.wait()).toEqual({ exitCode: 3, signal: null });
    expect(text).toContain('got-usr1');

    // stdin arrives as it is written, and its end reaches the command as EOF.
    text = '';
    const stdin = new PassThrough();
    const reader = client.exec(
      { argv: ['sh', '-c', 'while read line; do echo "line:$line"; done; echo eof'] },
      { stdin, stdout: out, stderr: new PassThrough() },
    );
    stdin.write('a\n');
    await until(() => text.includes('line:a'), 'the first line');
    stdin.end('b\n');
    expect(await reader.wait()).toEqual({ exitCode: 0, signal: null });
    expect(text).toBe('line:a\nline:b\neof\n');

    const sleeper = client.exec(
      { argv: ['sleep', '60'] },
      { stdout: new PassThrough(), stderr: new PassThrough() },
    );
    sleeper.signal('INT');
    expect(await sleeper.wait()).toEqual({ exitCode: null, signal: 'SIGINT' });
  });

  it('runs on a PTY with a window size that follows resize', async () => {
    const sized = await run(client, { argv: ['sh', '-c', 'tty; stty size'], tty: { rows: 40, cols: 132 } });
    expect(sized.exitCode).toBe(0);
    expect(sized.stdout).toMatch(/^\/dev\/pts\/\d+\r\n40 132\r\n$/);

    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const handle = client.exec(
      {
        argv: ['sh', '-c', 'trap "stty size; exit 5" WINCH; echo ready; while :; do sleep 0.05; done'],
        tty: { rows: 24, cols: 80 },
      },
      { stdout: out, stderr: new PassThrough() },
    );
    await until(() => text.includes('ready'), 'the WINCH trap');
    handle.resize(50, 160);
    expect(await handle.wait()).toEqual({ exitCode: 5, signal: null });
    expect(text).toContain('50 160');

    const typed = new PassThrough();
    const cat = run(client, { argv: ['cat'], tty: { rows: 24, cols: 80 } }, typed);
    typed.end('typed\n');
    const r = await cat;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('typed');
  });

  it('writes files atomically with mode and owner, and reads them back', async () => {
    const data = randomBytes(300_000);
    const path = join(work, 'sub', 'blob.bin');
    await mkdir(join(work, 'sub'));
    await client.writeFile(path, data, { mode: 0o640, uid: 65534, gid: 65534 });
    const st = await stat(path);
    expect(st.mode & 0o7777).toBe(0o640);
    expect([st.uid, st.gid]).toEqual([65534, 65534]);
    expect((await readFile(path)).equals(data)).toBe(true);
    expect((await client.readFile(path, BIG)).equals(data)).toBe(true);

    await client.writeFile(path, 'replaced');
    expect(await readFile(path, 'utf8')).toBe('replaced');

    await expect(client.readFile(join(work, 'missing'), BIG)).rejects.toMatchObject({ code: 'not_found' });
    await expect(client.readFile(work, BIG)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.readFile('relative/path', BIG)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.writeFile(join(work, 'no', 'dir', 'f'), 'x')).rejects.toMatchObject({
      code: 'not_found',
    });
  });

  it('explains commands it cannot start', async () => {
    await expect(run(client, { argv: ['/no/such/binary'] })).rejects.toMatchObject({ code: 'not_found' });
    await expect(run(client, { argv: ['true'], cwd: '/no/such/dir' })).rejects.toThrow(/working directory/);
    await expect(run(client, { argv: ['true'], user: 'no-such-user' })).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(run(client, { argv: [] })).rejects.toMatchObject({ code: 'bad_request' });
    expect((await run(client, { argv: ['true'] })).exitCode).toBe(0);
  });

  it('kills the commands of a connection that goes away', async () => {
    const other = await connectAgent({ kind: 'virtio-serial', socketPath });
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const handle = other.exec(
      { argv: ['sh', '-c', 'echo $$; exec sleep 300'] },
      { stdout: out, stderr: out },
    );
    await until(() => /\d+\n/.test(text), 'the pid');
    const pid = Number(text.trim());
    expect(isAlive(pid)).toBe(true);
    other.close();
    await expect(handle.wait()).rejects.toThrow(/closed/);
    await until(() => !isAlive(pid), 'the orphaned command to be killed');
  });

  it('survives hostile frames: errors on the stream or the connection, never a crash', async () => {
    const raw = (): Promise<{
      sock: Socket;
      frames: () => ReturnType<FrameDecoder['push']>;
      closed: Promise<void>;
    }> =>
      new Promise((resolve, reject) => {
        const sock = createConnection({ path: socketPath });
        const dec = new FrameDecoder();
        const got: ReturnType<FrameDecoder['push']> = [];
        sock.on('data', (d: Buffer) => got.push(...dec.push(d)));
        const closed = new Promise<void>((r) => sock.once('close', () => r()));
        sock.once('connect', () => resolve({ sock, frames: () => got, closed }));
        sock.once('error', reject);
      });

    // Bad JSON, unknown op, reserved stream 0, duplicate stream: error replies, connection stays up.
    const a = await raw();
    a.sock.write(encodeFrame(FrameType.open, 1, '{not json'));
    a.sock.write(encodeFrame(FrameType.open, 2, '{"op":"launch-missiles"}'));
    a.sock.write(encodeFrame(FrameType.open, 0, '{"op":"health"}'));
    a.sock.write(encodeFrame(FrameType.open, 3, '{"op":"exec","argv":["sleep","5"]}'));
    a.sock.write(encodeFrame(FrameType.open, 3, '{"op":"health"}'));
    a.sock.write(encodeFrame(FrameType.open, 4, '{"op":"exec","argv":["a\\u0000b"]}'));
    a.sock.write(encodeFrame(FrameType.data, 99, 'data for nobody'));
    a.sock.write(encodeFrame(FrameType.open, 5, '{"op":"health"}'));
    await until(() => a.frames().some((f) => f.stream === 5), 'the health reply');
    const replies = new Map(
      a
        .frames()
        .filter((f) => f.type === FrameType.reply)
        .map((f) => [f.stream, JSON.parse(f.payload.toString())]),
    );
    expect(replies.get(1)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(replies.get(2)).toMatchObject({ ok: false, error: { code: 'unknown_method' } });
    expect(replies.get(4)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(replies.get(5)).toMatchObject({ ok: true });
    a.sock.destroy();

    // A frame length beyond the limit, or an unknown frame type: a stream-0 error, then the agent hangs up.
    for (const bad of [
      Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1]),
      Buffer.from([0, 0, 0, 5, 0x42, 0, 0, 0, 1]),
    ]) {
      const b = await raw();
      b.sock.write(bad);
      await b.closed;
      expect(b.frames()[0]).toMatchObject({ type: FrameType.reply, stream: 0 });
    }

    // Random bytes: whatever happens to that connection, the agent keeps serving others.
    for (let i = 0; i < 20; i++) {
      const c = await raw();
      c.sock.write(randomBytes(1 + ((i * 97) % 2000)));
      c.sock.destroy();
    }
    // Well-framed requests with fields of every wrong type: each gets an answer, none kills the agent.
    const values = [null, true, 0, -1, 1e300, 'x', '', [], [1], ['a', 2], {}, { rows: 'x' }, '\u0000'];
    const d = await raw();
    let id = 1;
    for (const op of ['exec', 'read_file', 'write_file', 'health', 7, null])
      for (const field of ['argv', 'env', 'cwd', 'user', 'tty', 'path', 'mode', 'uid', 'op'])
        for (const v of values) {
          const req: Record<string, unknown> = { op, [field]: v };
          if (op === 'exec' && field !== 'argv') req.argv = ['true'];
          if (op === 'write_file' && field !== 'path') req.path = join(work, `fuzz-${id}`);
          d.sock.write(encodeFrame(FrameType.open, id, JSON.stringify(req)));
          if (op === 'write_file') d.sock.write(encodeFrame(FrameType.eof, id));
          d.sock.write(encodeFrame(FrameType.control, id, JSON.stringify({ op: 'signal', signal: v })));
          d.sock.write(
            encodeFrame(FrameType.control, id, JSON.stringify({ op: 'resize', rows: v, cols: v })),
          );
          id++;
        }
    const last = id;
    d.sock.write(encodeFrame(FrameType.open, last, '{"op":"health"}'));
    await until(
      () => d.frames().some((f) => f.stream === last),
      'the agent to get through the fuzz requests',
    );
    const answered = new Set(
      d
        .frames()
        .filter((f) => f.type === FrameType.reply)
        .map((f) => f.stream),
    );
    for (let i = 1; i <= last; i++) expect(answered.has(i), `stream ${i} answered`).toBe(true);
    d.sock.destroy();

    expect((await client.health()).pid).toBe(agent.pid);
    expect(agent.exitCode).toBeNull();
  });

  it('speaks through a Firecracker-style hybrid vsock socket (CONNECT handshake) and reports refusals', async () => {
    // A stand-in for Firecracker's vsock UDS: it checks the CONNECT line, answers OK and then splices the
    // connection to the agent.
    const udsPath = join(work, 'fc-vsock.sock');
    const seen: string[] = [];
    const fc = createServer((conn) => {
      let line = '';
      const onData = (d: Buffer) => {
        line += d.toString('latin1');
        const nl = line.indexOf('\n');
        if (nl < 0) return;
        conn.off('data', onData);
        seen.push(line.slice(0, nl));
        if (line.slice(0, nl) !== 'CONNECT 1024') {
          conn.end('FAILURE\n');
          return;
        }
        const up = createConnection({ path: socketPath });
        up.once('connect', () => {
          conn.write('OK 1073741824\n');
          up.pipe(conn);
          conn.pipe(up);
        });
        up.on('error', () => conn.destroy());
        conn.on('close', () => up.destroy());
      };
      conn.on('data', onData);
    });
    await new Promise<void>((r) => fc.listen(udsPath, () => r()));
    try {
      const c = await connectAgent({ kind: 'firecracker-vsock', udsPath, port: 1024 });
      expect((await c.health()).pid).toBe(agent.pid);
      expect(await run(c, { argv: ['echo', 'through vsock'] })).toMatchObject({
        exitCode: 0,
        stdout: 'through vsock\n',
      });
      c.close();
      expect(seen).toContain('CONNECT 1024');

      await expect(connectAgent({ kind: 'firecracker-vsock', udsPath, port: 9 })).rejects.toThrow(
        /refused CONNECT 9: FAILURE/,
      );
      await expect(
        connectAgent({ kind: 'firecracker-vsock', udsPath: join(work, 'absent.sock'), port: 1024 }),
      ).rejects.toMatchObject({ code: 'operation_failed' });
    } finally {
      await new Promise((r) => fc.close(r));
    }
  });

  it('applies banger.hostname and banger.dns to a root tree', async () => {
    const root = join(work, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc', 'hosts'), '127.0.0.1\tlocalhost\n');
    const cmdline = join(work, 'cmdline');
    await writeFile(cmdline, 'console=ttyS0 banger.hostname=box-1 banger.dns=10.0.0.53,fd00::53 quiet\n');
    const sock = join(work, 'config.sock');
    const child = runner.spawn([agentBinaryPath(), '--listen-unix', sock, '--cmdline', cmdline, root], {
      pipe: true,
    });
    child.stdin?.end();
    try {
      const c = await waitForAgent({ kind: 'virtio-serial', socketPath: sock }, { timeoutMs: 30_000 });
      expect((await c.health()).bootPhasesMs.configApplied).toBeGreaterThan(0);
      c.close();
      expect(await readFile(join(root, 'etc', 'hostname'), 'utf8')).toBe('box-1\n');
      expect(await readFile(join(root, 'etc', 'resolv.conf'), 'utf8')).toContain(
        'nameserver 10.0.0.53\nnameserver fd00::53\n',
      );
      expect(await readFile(join(root, 'etc', 'hosts'), 'utf8')).toBe(
        '127.0.0.1\tlocalhost\n127.0.1.1\tbox-1\n',
      );
    } finally {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    expect(agentLog).not.toMatch(/out of memory/);
  });
});
