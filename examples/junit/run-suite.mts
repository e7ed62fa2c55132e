/**
 * Runs a test suite in a fresh VM and collects its JUnit report, through the SDK.
 *
 *   npx tsx examples/junit/run-suite.mts [SUITE_DIR] [REPORT]   (defaults: ./suite next to this file, ./junit.xml)
 *
 * The suite's files are copied in with vm.files.write (a git repository would go in with `workspace`), its
 * runner writes /root/suite/junit.xml, and the report comes back with vm.files.read. The VM is deleted at
 * the end however it ends (`await using`). BANGER_IMAGE picks the image (default: alpine).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Banger } from 'banger';

const suite = process.argv[2] ?? join(import.meta.dirname, 'suite');
const report = process.argv[3] ?? 'junit.xml';
const GUEST_DIR = '/root/suite';

/** Every file under dir, relative to it (a small tree: each file goes in one call, at most 10 MiB). */
function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path).map((p) => join(name, p)) : [name];
  });
}

const banger = new Banger();
await using vm = await banger.vms.run({ image: process.env.BANGER_IMAGE ?? 'alpine' });
const dirs = new Set(walk(suite).map((f) => join(GUEST_DIR, f, '..')));
await vm.run(['mkdir', '-p', ...dirs]);
for (const file of walk(suite)) {
  const mode = statSync(join(suite, file)).mode & 0o777;
  await vm.files.write(join(GUEST_DIR, file), readFileSync(join(suite, file)), { mode });
}
const run = await vm.run(['sh', join(GUEST_DIR, 'run-tests.sh'), join(GUEST_DIR, 'junit.xml')], {
  timeoutMs: 10 * 60_000,
});
process.stdout.write(run.stdout);
process.stderr.write(run.stderr);
writeFileSync(report, await vm.files.read(join(GUEST_DIR, 'junit.xml')));
console.log(`JUnit report: ${relative(process.cwd(), report) || report}`);
process.exitCode = run.exitCode ?? 1;
