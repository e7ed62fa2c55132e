import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { initScriptPath } from '../../../src/kernel/index.js';

describe('stage-1 init script', () => {
  const script = readFileSync(initScriptPath(), 'utf8');

  it('runs under busybox and reads the documented kernel arguments', () => {
    expect(script.startsWith('#!/bin/busybox sh\n')).toBe(true);
    for (const arg of ['root=*', 'rootfstype=*', 'ro)', 'rw)', 'init=*', 'banger.ip=*']) {
      expect(script).toContain(arg);
    }
    expect(script).toContain('exec switch_root /newroot "$init"');
  });

  it('exists where the initramfs builder looks for it', () => {
    expect(existsSync(initScriptPath())).toBe(true);
  });
});
