// Forwarded TCP (`banger vm forward`) against the same guest server reached directly over the bridge (a
// client in the VM's namespace -> tap -> guest eth0), interleaved, under QEMU TCG: connect latency (connect,
// send one byte, get it echoed: the time until the connection is usable) and one-way throughput (host to
// guest, the guest's sink acknowledging the end). Two phases in one run, each with its own VM and its own
// bridge baseline:
//   - agent: the daemon outside the VMs' namespace (`netns` set), so a forward goes host 127.0.0.1 ->
//     daemon -> agent connect stream over virtio-serial -> guest loopback (the only way before direct);
//   - direct: the daemon inside the namespace of the VMs' bridge (the usual case: `netns` unset), so a
//     forward to a server on 0.0.0.0 goes host 127.0.0.1 -> daemon -> guestIp:port over the bridge.
// Both clients are the same separate node process; the guest is the busybox root with the agent, its
// servers busybox nc. Goal (issue 17): throughput >= 0.5x, connect latency <= +5 ms.
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
const rootfsPath = await buildBusyboxAgentRoot(runner, work);

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

interface PhaseResult {
  rtt: { direct: number[]; forward: number[] };
  tput: { direct: number[]; forward: number[] };
}

/** One phase: a fresh instance whose daemon runs in the host's namespace ('agent') or in the VMs' ('direct'). */
async function phase(mode: 'agent' | 'direct'): Promise<PhaseResult> {
  const inst = createInstance();
  const cli = async (args: string[]) => {
    const r = await inst.cli(args);
    if (r.exitCode !== 0) throw new Error(`banger ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  // The forward's host end listens where the daemon runs: the forward client runs there too.
  const fwdNs = mode === 'direct' ? ns : undefined;
  let daemon: ReturnType<typeof execa> | undefined;
  try {
    await runner.run(['mkdir', '-p', join(inst.home, 'config'), join(inst.home, 'state')]);
    // Same bridge in both phases (the first phase's is removed after it: same name, same subnet).
    writeInstanceConfig(inst.home, mode === 'agent' ? ns : '', fx.id.slice(6));
    registerImage(inst.home, {
      name: 'bbox',
      rootfsPath,
      kernelPath: kernel.kernelPath,
      initrdPath: kernel.initrdPath,
    });
    if (mode === 'direct') {
      // Started by hand inside the namespace (the CLI would start it in its own); the CLI reaches it by its
      // unix socket, which no namespace separates.
      daemon = execa('ip', ['netns', 'exec', ns, process.execPath, join(REPO_ROOT, 'bin', 'bangerd')], {
        env: inst.env,
        reject: false,
      });
      const deadline = Date.now() + 60_000;
      while ((await inst.cli(['daemon', 'status'])).exitCode !== 0) {
        if (Date.now() > deadline || daemon.exitCode !== null)
          throw new Error('bangerd did not start in the netns');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
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
    const out: PhaseResult = { rtt: { direct: [], forward: [] }, tput: { direct: [], forward: [] } };
    await client(ns, ip, 7000, 'rtt', 3); // warm-up: guest page cache, ARP
    await client(fwdNs, '127.0.0.1', 17000, 'rtt', 3);
    for (let round = 0; round < ROUNDS; round++) {
      out.rtt.direct.push(...((await client(ns, ip, 7000, 'rtt', CONNECTS)) as number[]));
      out.rtt.forward.push(...((await client(fwdNs, '127.0.0.1', 17000, 'rtt', CONNECTS)) as number[]));
      out.tput.direct.push((await client(ns, ip, 7001, 'tput', MIB)) as number);
      out.tput.forward.push((await client(fwdNs, '127.0.0.1', 17001, 'tput', MIB)) as number);
    }
    return out;
  } finally {
    await inst.cli(['vm', 'delete', 'bench']).catch(() => {});
    await inst.cli(['daemon', 'stop']).catch(() => {});
    await daemon?.catch(() => {});
    await inst.cleanup();
    await runner.run(['ip', '-n', ns, 'link', 'del', `br-fc-${fx.id.slice(6)}`], { allowFailure: true });
  }
}

try {
  const results = { agent: await phase('agent'), direct: await phase('direct') };
  const f = (x: number) => x.toFixed(2);
  console.log(
    `QEMU TCG, busybox guest, ${ROUNDS} rounds interleaved per phase; ${CONNECTS} connects and ${MIB} MiB per round.\n`,
  );
  console.log(
    '| forward path | measure | direct (bridge) median | forward median | ratio | difference | goal |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [mode, r] of Object.entries(results)) {
    const name = mode === 'agent' ? 'agent stream (before; netns set)' : 'direct to guestIp (after)';
    const dr = median(r.rtt.direct);
    const fr = median(r.rtt.forward);
    console.log(
      `| ${name} | connect + 1-byte echo (ms) | ${f(dr)} | ${f(fr)} | ${(fr / dr).toFixed(2)}x | ${fr >= dr ? '+' : ''}${f(fr - dr)} ms | <= +5 ms: ${fr - dr <= 5 ? 'met' : 'missed'} |`,
    );
    const dt = median(r.tput.direct);
    const ft = median(r.tput.forward);
    console.log(
      `| ${name} | throughput host->guest (MiB/s) | ${f(dt)} | ${f(ft)} | ${(ft / dt).toFixed(2)}x | ${f(ft - dt)} MiB/s | >= 0.5x: ${ft / dt >= 0.5 ? 'met' : 'missed'} |`,
    );
  }
  console.log(`\nhost load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores.`);
} finally {
  await fx.cleanup();
}
