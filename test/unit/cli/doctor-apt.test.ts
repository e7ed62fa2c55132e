import { describe, expect, it } from 'vitest';
import { requireTool } from '../../../src/cli/doctor/checks.js';
import { aptLine, type CheckResult } from '../../../src/cli/doctor/index.js';
import { resolveLayout } from '../../../src/config/index.js';
import { createRunner } from '../../../src/host/runner.js';

describe('banger doctor: one apt-get line for what is missing', () => {
  it('names the package of a missing tool, and puts every missing package on one line once', async () => {
    const ctx = {
      layout: resolveLayout({ env: {}, uid: 1000, home: '/nonexistent', mode: 'user' }),
      runner: createRunner(),
      arch: 'x64',
    };
    const missing = await requireTool('x', ['banger-no-such-tool-4242', '--version'], 'pkg-a')(ctx);
    expect(missing).toMatchObject({ status: 'FAIL', packages: ['pkg-a'] });
    const results: CheckResult[] = [
      missing,
      { name: 'y', status: 'WARN', details: [], packages: ['pkg-b'] },
      { name: 'z', status: 'FAIL', details: [], packages: ['pkg-a'] },
      { name: 'ok', status: 'PASS', details: [], packages: ['pkg-c'] },
    ];
    expect(aptLine(results)).toBe('sudo apt-get install -y pkg-a pkg-b');
    expect(aptLine([{ name: 'ok', status: 'PASS', details: [] }])).toBeUndefined();
  });
});
