// SDK overhead (issue 21): `vm.exec(['true'])` through the SDK against the CLI's `vm exec` path and the agent's
// own exec, all in this one process (no Node start-up in any of them). The daemon side is real: the VM
// service over SQLite, a stand-in VMM that runs the real banger-agent on the host (in a namespace this
// bench makes), the daemon's own vm.* handlers behind the real RPC server on a unix socket.
//   - agent: AgentClient.exec(['true']) on the daemon's own agent connection (the floor);
//   - CLI path: rpc client.call('vm.exec', …) with onOutput, as `banger vm exec` makes it;
//   - SDK: (await banger.vms.get(…)) once, then vm.exec(['true']).wait().
// Goals: SDK ≤ 1.2× the CLI path, and ≤ 5 ms over the agent.
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { bangerVersion } from '../src/config/index.js';
import { vmHandlers } from '../src/daemon/handlers/vm.js';
import { agentBinaryPath } from '../src/guest/index.js';
import { createRpcClient, type Handlers, Operations, startRpcServer } from '../src/rpc/index.js';
import { Banger } from '../src/sdk/index.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { createStandinVmm, hostAgentGuest } from '../test/fixtures/standin-vmm.js';
import { addImage, buildVmHarness } from '../test/fixtures/vm-harness.js';
import { median, timeMs } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const fx = createNetnsFixture();
const runner = fx.runner;

async function samples(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 10; i++) await fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) xs.push(await timeMs(fn));
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

  const viaAgent = await samples(() =>
    Promise.resolve(agent.exec({ argv: ['true'] }, sink())).then((e) => e.wait()),
  );
  const viaCli = await samples(() =>
    client.call(
      'vm.exec',
      { ref: 'bench', argv: ['true'] },
      { onOutput: (_s, d) => process.stdout.write(d) },
    ),
  );
  const viaSdk = await samples(() => vm.exec(['true']).wait());

  const a = median(viaAgent);
  const c = median(viaCli);
  const s = median(viaSdk);
  process.stdout.write(
    `${ROUNDS} rounds after 10 warm-up rounds; agent on the host (unix socket) in a netns.\n\n`,
  );
  process.stdout.write('| case | median ms | ratio to CLI path | over agent (ms) |\n|---|---:|---:|---:|\n');
  for (const [name, m] of [
    ['agent: exec true (floor)', a],
    ["CLI path: rpc call('vm.exec') (baseline)", c],
    ['SDK: vm.exec([true]).wait()', s],
  ] as const)
    process.stdout.write(`| ${name} | ${m.toFixed(3)} | ${(m / c).toFixed(2)} | ${(m - a).toFixed(3)} |\n`);
  process.stdout.write(
    `\nSDK/CLI ${(s / c).toFixed(2)}× (goal ≤ 1.2×); SDK over agent ${(s - a).toFixed(2)} ms (goal ≤ 5 ms).\n`,
  );
} finally {
  await server.close();
  await h.discard();
  await fx.cleanup();
}
