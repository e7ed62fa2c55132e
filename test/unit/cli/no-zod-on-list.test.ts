import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../fixtures/banger-instance.js';

// Every CLI call pays for what src/cli/main.ts imports statically (issue 20): zod's schemas (the daemon
// checks params) and the completion library (only `completion`/`complete` use it) must stay behind a dynamic
// import. Follows the static import graph as the bundler sees it.
describe('the CLI start-up import graph', () => {
  it('holds neither zod nor the completion library', async () => {
    const result = await build({
      entryPoints: [join(REPO_ROOT, 'src/cli/main.ts')],
      bundle: true,
      write: false,
      metafile: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      outdir: join(REPO_ROOT, 'dist/.no-zod-probe'),
      external: ['better-sqlite3', 'zstd-napi'],
      logLevel: 'silent',
    });
    const inputs = result.metafile.inputs;
    const from = new Map<string, string | undefined>([['src/cli/main.ts', undefined]]);
    const queue = ['src/cli/main.ts'];
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      for (const i of inputs[f]?.imports ?? []) {
        if (i.kind === 'dynamic-import' || i.external || from.has(i.path)) continue;
        from.set(i.path, f);
        queue.push(i.path);
      }
    }
    const chain = (f: string): string => {
      const parent = from.get(f);
      return parent ? `${chain(parent)} -> ${f}` : f;
    };
    const loaded = [...from.keys()];
    expect(loaded.length).toBeGreaterThan(20); // the walk followed the graph
    const offending = loaded.filter((f) => /node_modules\/(zod|@bomb\.sh)\//.test(f)).map(chain);
    expect(offending).toEqual([]);
  });
});
