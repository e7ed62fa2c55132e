// Child of the rootfs-build bench (run.ts skips files starting with `_`): builds one image from local layer
// files with the compiled builder (what the daemon runs; tsx's loader alone would add ~55 MiB) and prints
// its peak RSS, so the number is this build's alone. argv: <dist rootfs/index.js> <output> <layer>...
// READ_AHEAD_BYTES in the environment sets the build's read-ahead (layer-readahead bench); default otherwise.
import { createReadStream, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [entry, output, ...layers] = process.argv.slice(2);
const { buildRootfs } = await import(pathToFileURL(entry).href);
const { report } = await buildRootfs({
  layers: layers.map((path) => ({ digest: path, open: async () => createReadStream(path) })),
  output,
  readAheadBytes: process.env.READ_AHEAD_BYTES ? Number(process.env.READ_AHEAD_BYTES) : undefined,
});
const entries = Object.values(report.entries).reduce((a, b) => a + b, 0);
// VmHWM, not getrusage's maxRSS: Linux carries ru_maxrss across fork and exec, so a child of a big parent
// would report the parent's size. VmHWM belongs to this process's own address space.
const hwmKiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
process.stdout.write(`${JSON.stringify({ maxRssBytes: hwmKiB * 1024, entries })}\n`);
