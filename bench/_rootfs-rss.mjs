// Child of the rootfs-build bench (run.ts skips files starting with `_`): builds one image from local layer
// files with the compiled builder (what the daemon runs; tsx's loader alone would add ~55 MiB) and prints
// its peak RSS, so the number is this build's alone. argv: <dist rootfs/index.js> <output> <layer>...
import { createReadStream } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [entry, output, ...layers] = process.argv.slice(2);
const { buildRootfs } = await import(pathToFileURL(entry).href);
const { report } = await buildRootfs({
  layers: layers.map((path) => ({ digest: path, open: async () => createReadStream(path) })),
  output,
});
const entries = Object.values(report.entries).reduce((a, b) => a + b, 0);
// maxRSS is in KiB.
process.stdout.write(`${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, entries })}\n`);
