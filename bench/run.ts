// `npm run bench [name…]`: runs each benchmark in bench/ (or the named ones) one after another, each in its
// own process so one's warm caches and memory do not colour the next. Each prints its own markdown table.
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execa } from 'execa';

const dir = import.meta.dirname;
const wanted = process.argv.slice(2);
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => basename(f, '.ts'))
  .sort();
const chosen = wanted.length ? all.filter((name) => wanted.includes(name)) : all;
const unknown = wanted.filter((name) => !all.includes(name));
if (unknown.length) {
  process.stderr.write(`bench: unknown benchmark(s) ${unknown.join(', ')}; have: ${all.join(', ')}\n`);
  process.exit(2);
}
let failed = 0;
for (const name of chosen) {
  process.stdout.write(`\n## ${name}\n\n`);
  const r = await execa('npx', ['tsx', join(dir, `${name}.ts`)], { stdio: 'inherit', reject: false });
  if (r.exitCode !== 0) failed++;
}
process.exit(failed ? 1 : 0);
