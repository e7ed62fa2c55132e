// `npm run build`, after tsc: bundles the CLI (dist/cli/main.js and everything it imports) into one file,
// dist/cli/banger.js, which bin/banger loads. One minified file starts markedly faster than Node resolving,
// reading and linking a few hundred ESM modules on every `banger` call (bench/cli-startup.ts measures it).
// It sits beside main.js so the paths the code derives from import.meta.url (the package root, the daemon's
// main.js) stay the same. Native addons stay outside: they are loaded from node_modules as before.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

// zod's classic API re-exports every locale as `z.locales` (about 260 kB minified, a third of what `banger vm
// list` loads and compiles); banger sets none and keeps zod's default English messages, so the bundle keeps only
// `z.locales.en` (the default messages are built from it, unchanged).
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
      contents: "export { default as en } from './en.js';",
      loader: 'js',
    }));
  },
};

// Chunk names carry content hashes: an earlier build's would otherwise pile up.
for (const f of readdirSync('dist/cli')) if (f.startsWith('bundle-')) rmSync(join('dist/cli', f));

await build({
  entryPoints: { banger: 'dist/cli/main.js' },
  outdir: 'dist/cli',
  // What the CLI imports lazily (the MCP server and its SDK) goes into chunks loaded only when used. They
  // sit beside banger.js too: code in them finds the daemon and the assets from its own location.
  splitting: true,
  chunkNames: 'bundle-[name]-[hash]',
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', 'zstd-napi'],
  // CommonJS dependencies bundled into an ES module still call require() for Node's built-ins, and some
  // use __filename (write-file-atomic names its temporary files with it).
  banner: {
    js: [
      "import { createRequire as __bangerRequire } from 'node:module';",
      "import { fileURLToPath as __bangerPath } from 'node:url';",
      'const require = __bangerRequire(import.meta.url);',
      'const __filename = __bangerPath(import.meta.url);',
    ].join(' '),
  },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});
