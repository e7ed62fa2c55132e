// Helper for bench/oci-pull.ts (files starting with _ are not benchmarks): an OCI layout of one image
// whose layers are the given files, byte for byte.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

async function put(layout: string, bytes: Buffer, mediaType: string) {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { mediaType, digest, size: bytes.length };
}

export async function writeTwoLayerLayout(layout: string, tag: string, files: string[]): Promise<void> {
  const layers = [];
  for (const f of files)
    layers.push(await put(layout, await readFile(f), 'application/vnd.oci.image.layer.v1.tar+gzip'));
  const config = await put(
    layout,
    Buffer.from(
      JSON.stringify({
        os: 'linux',
        architecture: 'amd64',
        config: {},
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    ),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = await put(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config,
        layers,
      }),
    ),
    'application/vnd.oci.image.manifest.v1+json',
  );
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}
