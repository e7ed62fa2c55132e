import { describe, expect, it } from 'vitest';
import { healthSchema } from '../../../src/guest/replies.js';

const health = {
  ok: true,
  version: '0.1.0',
  uptimeMs: 10,
  pid: 1,
  pid1: true,
  hostname: 'vm',
  bootPhasesMs: { agentStart: 5 },
};

describe("the agent's health reply", () => {
  it('takes the memory figures of a guest, and a reply without them (an older agent)', () => {
    expect(
      healthSchema.parse({ ...health, memory: { totalKiB: 1004420, availableKiB: 912344 } }).memory,
    ).toEqual({
      totalKiB: 1004420,
      availableKiB: 912344,
    });
    expect(healthSchema.parse(health).memory).toBeUndefined();
  });

  it('refuses memory figures a guest made up: negative, fractional, past 16 TiB, or not numbers', () => {
    for (const memory of [
      { totalKiB: -1, availableKiB: 0 },
      { totalKiB: 1.5, availableKiB: 0 },
      { totalKiB: 2 ** 60, availableKiB: 0 },
      { totalKiB: '1', availableKiB: 0 },
      { totalKiB: 1 },
    ]) {
      expect(healthSchema.safeParse({ ...health, memory }).success, JSON.stringify(memory)).toBe(false);
    }
  });
});
