// The Debian image the OCI and rootfs benchmarks share (run.ts skips files starting with `_`).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRunner } from '../src/host/index.js';
import { ensureDebianTree } from '../test/fixtures/debian-tree.js';
import { packTar } from '../test/fixtures/layers.js';

/**
 * Debian bookworm minbase (debootstrap, cached by the test fixture) as two gzipped layers in `dir`, like the
 * e2e notes' image: the tree, then a layer with whiteouts, an opaque dir and a new file.
 */
export async function debianLayers(dir: string): Promise<string[]> {
  const runner = createRunner();
  const sh = (script: string) => runner.run(['sh', '-c', script], { timeoutMs: 30 * 60_000 });
  const tree = await ensureDebianTree();
  const l1 = join(dir, 'debian-l1.tar.gz');
  await sh(`tar --numeric-owner --xattrs --xattrs-include='*' -C '${tree}' -cf - . | gzip -6 > '${l1}'`);
  const l2 = join(dir, 'debian-l2.tar.gz');
  const tar = await packTar([
    { name: './etc/hostname', type: 'file', mode: 0o644, content: 'banger\n' },
    { name: './var/cache/apt/.wh.pkgcache.bin', type: 'file', mode: 0o644, content: '' },
    { name: './usr/share/doc/.wh..wh..opq', type: 'file', mode: 0o644, content: '' },
    { name: './usr/share/doc/README.banger', type: 'file', mode: 0o644, content: 'hi\n' },
  ]);
  await writeFile(join(dir, 'l2.tar'), tar);
  await sh(`gzip -6 -c '${join(dir, 'l2.tar')}' > '${l2}'`);
  return [l1, l2];
}
