/**
 * A vitest reporter that lists every skipped test with its reason and fails the run when a reason is not
 * a capability this kind of host may lack or a missing ../shared file (see docs/testing.md). A test states its reason with
 * `ctx.skip(reason)` or in a suite title as `(skipped: reason)`; a skip without one fails too, so nothing
 * that was meant to run can quietly not run.
 */
import type { Reporter, TestCase, TestModule, Vitest } from 'vitest/node';
import { ALLOWED_SKIP } from '../fixtures/skip.js';

interface Skip {
  where: string;
  reason: string | undefined;
}

function reasonOf(test: TestCase): string | undefined {
  const result = test.result();
  if (result.state === 'skipped' && result.note) return result.note;
  for (let at: TestCase['parent'] | TestCase = test; at.type !== 'module'; at = at.parent) {
    const stated = /\(skipped: (.+)\)\s*$/.exec(at.name);
    if (stated) return stated[1];
  }
  return undefined;
}

export default class SkipGuard implements Reporter {
  /** `-t PATTERN`: tests it leaves out were not meant to run, so they are not skips to account for. */
  private namePattern: RegExp | undefined;

  onInit(vitest: Vitest): void {
    this.namePattern = vitest.config.testNamePattern;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skips: Skip[] = [];
    for (const mod of modules) {
      for (const test of mod.children.allTests('skipped')) {
        // `it.todo` is a note to the reader, not a test that failed to run.
        if (test.options.mode === 'todo') continue;
        if (this.namePattern && !this.namePattern.test(test.fullName.replaceAll(' > ', ' '))) continue;
        skips.push({ where: `${mod.relativeModuleId} > ${test.fullName}`, reason: reasonOf(test) });
      }
    }
    if (skips.length === 0) return;
    const unexpected = skips.filter((s) => !s.reason || !ALLOWED_SKIP.test(s.reason));
    console.log(`\nskipped tests (${skips.length}):`);
    for (const s of skips) console.log(`  ${s.where}: ${s.reason ?? 'no reason given'}`);
    if (unexpected.length > 0) {
      console.log(
        `\nskip guard: ${unexpected.length} test(s) skipped for a reason outside the allowed ones (a missing host capability or ../shared file) ` +
          `(${ALLOWED_SKIP.source}); a test that cannot run here is a failure:`,
      );
      for (const s of unexpected) console.log(`  ${s.where}: ${s.reason ?? 'no reason given'}`);
      process.exitCode = 1;
    }
  }
}
