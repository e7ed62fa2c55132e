// Exec round trip through banger-agent (run on the host over a unix socket, so the transport cost is the
// protocol + agent, not a VM) against spawning `sh -c true` directly on the host, in the same run.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import { agentBinaryPath, waitForAgent } from '../src/guest/index.js';
import { createRunner } from '../src/host/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const runner = createRunner();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(rounds: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 10; i++) await fn(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return samples;
}

if (!existsSync(agentBinaryPath()))
  await runner.run(['make', '-s', '-C', join(agentBinaryPath(), '..', '..')]);
const work = await mkdtemp(join(tmpdir(), 'banger-bench-agent-'));
const socketPath = join(work, 'agent.sock');
const agent = runner.spawn([agentBinaryPath(), '--listen-unix', socketPath]);
try {
  const client = await waitForAgent({ kind: 'virtio-serial', socketPath }, { timeoutMs: 10_000 });
  const io = () => ({ stdout: new PassThrough().resume(), stderr: new PassThrough().resume() });
  const baseline = await time(ROUNDS, () => runner.run(['sh', '-c', 'true']));
  const viaAgent = await time(ROUNDS, () => client.exec({ argv: ['true'] }, io()).wait());
  const viaAgentSh = await time(ROUNDS, () => client.exec({ argv: ['sh', '-c', 'true'] }, io()).wait());
  const health = await time(ROUNDS, () => client.health());
  const concurrent = await time(Math.max(10, ROUNDS / 10), () =>
    Promise.all(Array.from({ length: 10 }, () => client.exec({ argv: ['true'] }, io()).wait())),
  );
  client.close();

  const base = median(baseline);
  const rows: [string, number[]][] = [
    ['host: runner.run(sh -c true) (baseline)', baseline],
    ['agent: exec true', viaAgent],
    ['agent: exec sh -c true', viaAgentSh],
    ['agent: health (no process)', health],
    ['agent: 10 concurrent exec true (whole batch)', concurrent],
  ];
  process.stdout.write(`${ROUNDS} rounds after 10 warm-up rounds; agent on the host over a unix socket.\n\n`);
  process.stdout.write('| case | median ms | ratio to baseline |\n|---|---:|---:|\n');
  for (const [name, xs] of rows)
    process.stdout.write(`| ${name} | ${median(xs).toFixed(3)} | ${(median(xs) / base).toFixed(2)} |\n`);
} finally {
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  await rm(work, { recursive: true, force: true });
}
