import type { Image } from '../../model/image.js';
import { formatSize } from '../../model/sizes.js';
import type { VMSpec } from '../../model/vm.js';

/** One line naming where an image came from. */
export function describeSource(s: Image['source']): string {
  switch (s.kind) {
    case 'oci':
      return `oci ${s.reference} (${s.digest}, ${s.platform})`;
    case 'bundle':
      return `bundle ${s.url} (sha256:${s.sha256})`;
    case 'recipe':
      return `recipe ${s.recipe}`;
    case 'tar':
      return `tarball ${s.file}`;
    case 'registered':
      return 'registered host files';
  }
}

/** `image show` as text: identity, source, files, kernel, config, users, fidelity report. */
export function renderImage(
  image: Image,
  report: unknown,
  usedBy: string[],
  warm: { name: string; spec: VMSpec; sizeBytes: number }[] = [],
): string {
  const a = image.artifacts;
  const lines = [
    `name:     ${image.name}`,
    `id:       ${image.id}`,
    `managed:  ${image.managed}`,
    `source:   ${describeSource(image.source)}`,
    `rootfs:   ${a.rootfsPath} (${formatSize(image.sizeBytes)})`,
    `kernel:   ${a.kernelRef ? `${a.kernelRef} ` : ''}${a.kernelPath ?? '(the default kernel)'}`,
  ];
  if (a.initrdPath) lines.push(`initrd:   ${a.initrdPath}`);
  if (a.modulesDir) lines.push(`modules:  ${a.modulesDir}`);
  const c = image.config;
  if (c.entrypoint) lines.push(`entrypoint: ${JSON.stringify(c.entrypoint)}`);
  if (c.cmd) lines.push(`cmd:      ${JSON.stringify(c.cmd)}`);
  if (c.workingDir) lines.push(`workdir:  ${c.workingDir}`);
  if (c.user) lines.push(`user:     ${c.user}`);
  for (const e of c.env ?? []) lines.push(`env:      ${e}`);
  lines.push(`created:  ${image.createdAt}`);
  lines.push(`used by:  ${usedBy.length > 0 ? usedBy.join(', ') : '(no VM)'}`);
  // What `vm run` restores instead of booting (made after the first cold run of each size).
  if (warm.length === 0) lines.push('warm template: none (the next cold vm run makes one)');
  for (const t of warm)
    lines.push(
      `warm template: ${t.name} (${t.spec.vcpu} vCPU, ${t.spec.memoryMib} MiB, disk ${formatSize(t.spec.diskSizeBytes)}; ${formatSize(t.sizeBytes)})`,
    );
  if (report !== undefined) {
    lines.push('fidelity report:');
    for (const [k, v] of Object.entries(report as Record<string, unknown>)) {
      lines.push(`  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
