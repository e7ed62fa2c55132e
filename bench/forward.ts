// Forwarded TCP (`banger vm forward`: host 127.0.0.1 -> daemon -> agent connect stream over virtio-serial ->
// guest loopback) against the same guest server reached directly over the bridge (a client in the VM's
// namespace -> tap -> guest eth0), interleaved in one run, under QEMU TCG: connect latency (connect, send
// one byte, get it echoed: the time until the connection is usable) and one-way throughput (host to guest,
// the guest's sink acknowledging the end). Both clients are the same separate node process; the guest is
// the busybox root with the agent, its servers busybox nc. Goal (issue 17): throughput >= 0.5x, connect
// latency <= +5 ms.
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createRunner } from '../src/host/index.js';
import { buildBusyboxAgentRoot } from '../test/fixtures/agent-root.js';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import { registerImage, writeInstanceConfig } from '../test/fixtures/guest-root.js';
import { ensureTestKernel } from '../test/fixtures/kernel.js';
import { createNetnsFixture } from '../test/fixtures/netns.js';
import { median } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTS = Number(process.env.BENCH_CONNECTS ?? 20);
const MIB = Number(process.env.BENCH_MIB ?? 16);
const runner = createRunner();
const kernel = await ensureTestKernel();
const fx = createNetnsFixture(runner);
const ns = await fx.createNetns('bench');
await fx.addClosedUplink(ns);
const work = await fx.tempDir();
const inst = createInstance();

const CLIENT = `const net=require('net');const [host,port,mode,arg]=process.argv.slice(1);
const now=()=>Number(process.hrtime.bigint())/1e6;
(async()=>{if(mode==='rtt'){const out=[];for(let i=0;i<+arg;i++){const t=now();
await new Promise((ok,ko)=>{const s=net.connect(+port,host,()=>s.write('x'));s.once('data',()=>{out.push(now()-t);s.destroy();ok();});s.on('error',ko);});}
console.log(JSON.stringify(out));}else{const bytes=+arg*1048576;const t=now();const s=net.connect(+port,host,()=>{
const chunk=Buffer.alloc(65536,7);let sent=0;const pump=()=>{while(sent<bytes){sent+=chunk.length;if(!s.write(chunk))return void s.once('drain',pump);}s.end();};pump();});
s.on('data',()=>{});s.on('error',e=>{console.error(e.message);process.exit(1)});s.on('end',()=>console.log(JSON.stringify(bytes/1048576/((now()-t)/1000))));}})();`;

async function client(
  netns: string | undefined,
  host: string,
  port: number,
  mode: 'rtt' | 'tput',
  arg: number,
) {
  const argv = [process.execPath, '-e', CLIENT, host, String(port), mode, String(arg)];
  const r = await execa(netns ? 'ip' : argv[0]!, netns ? ['netns', 'exec', netns, ...argv] : argv.slice(1));
  return JSON.parse(r.stdout) as number[] | number;
}

const cli = async (args: string[]) => {
  const r = await inst.cli(args);
  if (r.exitCode !== 0) throw new Error(`banger ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

try {
  await runner.run(['mkdir', '-p', join(inst.home, 'config'), join(inst.home, 'state')]);
  writeInstanceConfig(inst.home, ns, fx.id.slice(6));
  registerImage(inst.home, {
    name: 'bbox',
    rootfsPath: await buildBusyboxAgentRoot(runner, work),
    kernelPath: kernel.kernelPath,
    initrdPath: kernel.initrdPath,
  });
  await cli(['vm', 'create', '--name', 'bench', '--image', 'bbox']);
  const ip = (JSON.parse(await cli(['vm', 'show', 'bench', '--json'])) as { runtime: { guestIp: string } })
    .runtime.guestIp;
  // An echo server for latency, a sink that answers "ok" at the end for throughput (both fork per connection).
  await cli([
    'vm',
    'exec',
    'bench',
    '--',
    'sh',
    '-c',
    "printf '#!/bin/sh\\ncat >/dev/null\\necho ok\\n' > /tmp/sink && chmod +x /tmp/sink && " +
      '(nc -ll -p 7000 -e cat; true) </dev/null >/dev/null 2>&1 & (nc -ll -p 7001 -e /tmp/sink; true) </dev/null >/dev/null 2>&1 &',
  ]);
  await cli(['vm', 'forward', 'bench', '17000:7000', '17001:7001']);
  const rtt = { direct: [] as number[], forward: [] as number[] };
  const tput = { direct: [] as number[], forward: [] as number[] };
  // The agent channel's own ceiling: the same bytes as a command's stdin through `vm exec` (no forward).
  const execTput: number[] = [];
  const execSink = async () => {
    const t0 = performance.now();
    const r = await execa(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'banger'), 'vm', 'exec', 'bench', '--', 'sh', '-c', 'cat >/dev/null'],
      {
        env: inst.env,
        input: Buffer.alloc(MIB * 1048576, 7),
        reject: false,
      },
    );
    if (r.exitCode !== 0) throw new Error(`vm exec: ${r.stderr}`);
    return MIB / ((performance.now() - t0) / 1000);
  };
  await client(ns, ip, 7000, 'rtt', 3); // warm-up: guest page cache, ARP
  await client(undefined, '127.0.0.1', 17000, 'rtt', 3);
  for (let round = 0; round < ROUNDS; round++) {
    rtt.direct.push(...((await client(ns, ip, 7000, 'rtt', CONNECTS)) as number[]));
    rtt.forward.push(...((await client(undefined, '127.0.0.1', 17000, 'rtt', CONNECTS)) as number[]));
    tput.direct.push((await client(ns, ip, 7001, 'tput', MIB)) as number);
    tput.forward.push((await client(undefined, '127.0.0.1', 17001, 'tput', MIB)) as number);
    execTput.push(await execSink());
  }
  const f = (x: number) => x.toFixed(2);
  console.log(
    `QEMU TCG, busybox guest, ${ROUNDS} rounds interleaved; ${CONNECTS} connects and ${MIB} MiB per round.\n`,
  );
  console.log('| measure | direct (bridge) median | forward median | ratio | difference | goal |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  const dr = median(rtt.direct);
  const fr = median(rtt.forward);
  console.log(
    `| connect + 1-byte echo (ms) | ${f(dr)} | ${f(fr)} | ${(fr / dr).toFixed(2)}x | ${fr >= dr ? '+' : ''}${f(fr - dr)} ms | <= +5 ms: ${fr - dr <= 5 ? 'met' : 'missed'} |`,
  );
  const dt = median(tput.direct);
  const ft = median(tput.forward);
  console.log(
    `| throughput host->guest (MiB/s) | ${f(dt)} | ${f(ft)} | ${(ft / dt).toFixed(2)}x | ${f(ft - dt)} MiB/s | >= 0.5x: ${ft / dt >= 0.5 ? 'met' : 'missed'} |`,
  );
  const et = median(execTput);
  console.log(
    `| the agent channel alone: vm exec stdin (MiB/s, incl. CLI start) | ${f(dt)} | ${f(et)} | ${(et / dt).toFixed(2)}x | | the ceiling a forward shares |`,
  );
  console.log(`\nhost load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`);
} finally {
  await inst.cli(['vm', 'delete', 'bench']).catch(() => {});
  await inst.cli(['daemon', 'stop']).catch(() => {});
  await inst.cleanup();
  await fx.cleanup();
}
