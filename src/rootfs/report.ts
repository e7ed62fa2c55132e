import writeFileAtomic from 'write-file-atomic';
import type { FlattenStats } from './flatten.js';
import type { FlatTree } from './tree.js';
import type { EntryMeta, FidelityReport } from './types.js';

/** Counts what the tree kept, next to what flatten adjusted or dropped. */
export function buildReport(
  tree: FlatTree,
  stats: FlattenStats,
  imageBytes: number,
  injectedAssets: number,
): FidelityReport {
  const report: FidelityReport = {
    version: 1,
    layers: stats.layers,
    entries: { file: 0, dir: 0, symlink: 0, char: 0, block: 0, fifo: 0, hardlink: 0 },
    kept: { setuidSetgidSticky: 0, xattrs: 0, deviceNodes: 0, fifos: 0 },
    whiteouts: stats.whiteouts,
    adjusted: [...stats.adjusted, ...tree.notes.adjusted],
    dropped: stats.dropped,
    contentBytes: 0,
    imageBytes,
    injectedAssets,
  };
  if (tree.notes.implicitDirs > 0)
    report.adjusted.push({
      path: '/',
      what: `${tree.notes.implicitDirs} parent directories missing from the layers were created (root, 0755)`,
    });
  const seen = new Set<EntryMeta>();
  for (const node of tree.walk()) {
    if (node.parts.length === 0) continue;
    if (node.hardlink) {
      report.entries.hardlink++;
      continue;
    }
    report.entries[node.meta.kind]++;
    if (seen.has(node.meta)) continue;
    seen.add(node.meta);
    if (node.meta.mode & 0o7000) report.kept.setuidSetgidSticky++;
    report.kept.xattrs += node.meta.xattrs.size;
    if (node.meta.kind === 'char' || node.meta.kind === 'block') report.kept.deviceNodes++;
    if (node.meta.kind === 'fifo') report.kept.fifos++;
    report.contentBytes += node.size ?? 0;
  }
  return report;
}

/** Stores the report as JSON next to the image, atomically. */
export async function writeFidelityReport(path: string, report: FidelityReport): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o644 });
}
