// SDK overhead (issue 21): `vm.exec(['true'])` through the SDK against the CLI's `vm exec` path and the agent's
// own exec, all in this one process (no Node start-up in any of them). The daemon side is real: the VM
// service over SQLite, a stand-in VMM that runs the real banger-agent on the host (in a namespace this
// bench makes), the daemon's own vm.* handlers behind the real RPC server on a unix socket.
//   - agent: AgentClient.exec(['true']) on the daemon's own agent connection (the floor);
//   - CLI path: rpc client.call('vm.exec', …) with onOutput, as `banger vm exec` makes it;
//   - service: the daemon's VmService.exec, no RPC (what the daemon adds over the agent);
//   - SDK, one connection per call: the SDK as it was before its shared connection (the same Vm over the
//     one-call client), for the before/after in one run;
//   - SDK: (await banger.vms.get(…)) once, then vm.exec(['true']).wait() over its shared connection.
// The cases run interleaved, one round of each in turn (order rotated per round), so a loaded host's swings
// fall on all of them alike and "over the agent" is a difference of medians of the same rounds.
// Goals: SDK ≤ 1.2× the CLI path, and ≤ 5 ms over the agent.
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { bangerVersion } from '../src/config/index.js';
import { vmHandlers } from '../src/daemon/handlers/vm.js';
import { agentBinaryPath } from '../src/guest/index.js';
import { createRpcClient, type Handlers, Operations, startRpcServer } from '../src/rpc/index.js';
import { Banger } from '../src/sdk/index.js';
import { sdkCall } from '../src/sdk/methods.js';
import { Vm } from '../src/sdk/vm.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { createStandinVmm, hostAgentGuest } from '../test/fixtures/standin-vmm.js';
import { addImage, buildVmHarness } from '../test/fixtures/vm-harness.js';
import { median, timeMs } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const WARMUP = 20;
const fx = createNetnsFixture();
const runner = fx.runner;

/** Runs every case once per round, in a rotated order; returns each case's samples (warm-up dropped). */
async function interleaved(cases: readonly (() => Promise<unknown>)[]): Promise<number[][]> {
  const xs = cases.map(() => [] as number[]);
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (round + k) % cases.length;
      const t = await timeMs(cases[i] as () => Promise<unknown>);
      if (round >= WARMUP) xs[i]?.push(t);
    }
  }
  return xs;
}
const ns = await fx.createNetns('bsdk');
const root = await fx.tempDir();
await runner.run(['truncate', '-s', '24M', join(root, 'tiny.ext4')]);
await runner.run(['mkfs.ext4', '-F', '-q', join(root, 'tiny.ext4')]);
const h = buildVmHarness({
  stateDir: join(root, 'state'),
  netns: ns,
  bridge: `br-fc-${fx.id.slice(6)}`,
  bridgeIp: '172.29.0.1',
  vmm: createStandinVmm(runner, ns, { agentBinary: agentBinaryPath() }),
  guest: hostAgentGuest(),
});
addImage(h.store, 'tiny', join(root, 'tiny.ext4'));
const version = bangerVersion();
const socketPath = join(root, 'bangerd.sock');
const server = await startRpcServer({
  socketPath,
  // Only vm.* is called here; the rest of the daemon's table is not wired in this bench.
  handlers: vmHandlers({ vms: h.service }) as unknown as Handlers,
  version,
  log: pino({ level: 'silent' }),
  operations: new Operations(),
});
try {
  await h.service.create({ name: 'bench', image: 'tiny' });
  const agent = await h.service.agent('bench');
  const sink = () => ({ stdout: new PassThrough().resume(), stderr: new PassThrough().resume() });
  const client = createRpcClient(socketPath, version);
  const banger = new Banger({ socketPath });
  const vm = await banger.vms.get('bench');

  const oneCall = createRpcClient(socketPath, version);
  const vmOneCall = new Vm(
    sdkCall(async () => oneCall),
    vm.info,
  );

  const cases = [
    [
      'agent: exec true (floor)',
      () => Promise.resolve(agent.exec({ argv: ['true'] }, sink())).then((e) => e.wait()),
    ],
    ['service: VmService.exec (no RPC)', () => h.service.exec('bench', { argv: ['true'] }, sink())],
    [
      "CLI path: rpc call('vm.exec') (baseline)",
      () =>
        client.call(
          'vm.exec',
          { ref: 'bench', argv: ['true'] },
          { onOutput: (_s, d) => process.stdout.write(d) },
        ),
    ],
    ['SDK before: one connection per call', () => vmOneCall.exec(['true']).wait()],
    ['SDK: vm.exec([true]).wait()', () => vm.exec(['true']).wait()],
  ] as const;
  const xs = await interleaved(cases.map(([, fn]) => fn));
  const med = xs.map(median);
  const [a = 0, , c = 1, , s = 0] = med;

  process.stdout.write(
    `${ROUNDS} interleaved rounds after ${WARMUP} warm-up rounds; agent on the host (unix socket) in a netns.\n\n`,
  );
  process.stdout.write('| case | median ms | ratio to CLI path | over agent (ms) |\n|---|---:|---:|---:|\n');
  cases.forEach(([name], i) => {
    const m = med[i] ?? 0;
    process.stdout.write(`| ${name} | ${m.toFixed(3)} | ${(m / c).toFixed(2)} | ${(m - a).toFixed(3)} |\n`);
  });
  process.stdout.write(
    `\nSDK/CLI ${(s / c).toFixed(2)}× (goal ≤ 1.2×); SDK over agent ${(s - a).toFixed(2)} ms (goal ≤ 5 ms).\n`,
  );
  banger.close();
} finally {
  await server.close();
  await h.discard();
  await fx.cleanup();
}
