import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createInProcessPrivOps } from '../../../../src/host/priv/index.js';
import { createRecordingRunner } from '../../../fixtures/recording-runner.js';

// systemd-resolved does not run here (no systemd in the container), so resolvectl's argv is checked on a
// recording runner; the validation in front of it is the part that guards root.
describe('routeResolver', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'bgr-res-'));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it("points banger's bridge at the daemon's loopback server and routes ~vm there", async () => {
    const runner = createRecordingRunner();
    const priv = createInProcessPrivOps({ runner, stateDir });
    await priv.routeResolver({ link: 'br-fc', host: '127.0.0.1', port: 42069 });
    expect(runner.commands()).toEqual([
      'resolvectl dns br-fc 127.0.0.1:42069',
      'resolvectl domain br-fc ~vm',
    ]);
  });

  it('refuses another link, a non-loopback server or a bad port, before running anything', async () => {
    const runner = createRecordingRunner();
    const priv = createInProcessPrivOps({ runner, stateDir });
    for (const req of [
      { link: 'eth0', host: '127.0.0.1', port: 53 },
      { link: 'br-fc', host: '1.1.1.1', port: 53 },
      { link: 'br-fc', host: '127.0.0.1; reboot', port: 53 },
      { link: 'br-fc', host: '127.0.0.1', port: 0 },
      { link: 'br-fc', host: '127.0.0.1', port: 70000 },
      { link: 'br-fc', host: '127.0.0.1', port: 1.5 },
    ]) {
      await expect(priv.routeResolver(req), JSON.stringify(req)).rejects.toMatchObject({
        code: 'bad_request',
      });
    }
    expect(runner.calls).toEqual([]);
  });
});
