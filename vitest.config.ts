import { defineConfig } from 'vitest/config';

// Three tiers (see docs/testing.md): unit (no host effects), integration (real tools, registry, netns),
// e2e (real VMs under QEMU). `npm test` runs unit+integration in parallel, then e2e one file at a time,
// because two TCG guests on a 2-core host slow each other down past their boot timeouts.
// The skip guard lists every skipped test and fails the run when one skipped for a reason other than a
// capability this kind of host may lack (test/fixtures/skip.ts).
export default defineConfig({
  test: {
    reporters: ['default', './test/reporters/skip-guard.ts'],
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
