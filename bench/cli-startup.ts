// How long a CLI call takes before and around its one RPC: `banger --version` (no daemon) and `banger vm
// list` (one call to a running daemon) against bare `node -e 0` in the same run, 15 runs each, alternating.
// Every `vm exec`, `vm run` and `vm list` pays this, so it is the floor of banger's per-command overhead.
// bin/banger loads the bundle (dist/cli/banger.js, made by `npm run build`); the unbundled row runs the
// same CLI from tsc's output (dist/cli/main.js) to show what the bundle buys. Goal: vm list <= 1.8x node.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { createInstance, REPO_ROOT } from '../test/fixtures/banger-instance.js';
import { median, timeMs } from './_lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const inst = createInstance();
const banger = (args: string[]) =>
  execa(process.execPath, [join(REPO_ROOT, 'bin', 'banger'), ...args], { env: inst.env });
const unbundled = (args: string[]) =>
  execa(process.execPath, [join(REPO_ROOT, 'dist', 'cli', 'main.js'), ...args], { env: inst.env });

const node: number[] = [];
const version: number[] = [];
const list: number[] = [];
const listUnbundled: number[] = [];
try {
  await mkdir(join(inst.home, 'state'), { recursive: true, mode: 0o700 });
  await banger(['vm', 'list']); // starts the daemon
  for (let i = 0; i < ROUNDS; i++) {
    node.push(await timeMs(() => execa(process.execPath, ['-e', '0'])));
    version.push(await timeMs(() => banger(['--version'])));
    list.push(await timeMs(() => banger(['vm', 'list'])));
    listUnbundled.push(await timeMs(() => unbundled(['vm', 'list'])));
  }
} finally {
  await banger(['daemon', 'stop']).catch(() => {});
  await inst.cleanup();
}

const base = median(node);
const row = (name: string, xs: number[]) => {
  const m = median(xs);
  return `| ${name} | ${m.toFixed(0)} | ${(m / base).toFixed(2)}× | +${(m - base).toFixed(0)} |`;
};
console.log(`\nCLI start-up, medians of ${ROUNDS} (ms)\n`);
console.log('| command | median | vs node -e 0 | overhead |');
console.log('|---|---:|---:|---:|');
console.log(row('node -e 0 (baseline)', node));
console.log(row('banger --version', version));
console.log(row('banger vm list (daemon running)', list));
console.log(row('banger vm list, unbundled dist/cli/main.js', listUnbundled));
