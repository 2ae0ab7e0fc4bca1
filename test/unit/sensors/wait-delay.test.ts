// The spacing of a message's waits (waits.ts waitDelayMs): the server's room for waits (1,000
// deliveries of one message) must last hours of waiting, not minutes.
import { describe, expect, it } from 'vitest';
import { waitDelayMs } from '../../../src/sensors/waits.ts';

describe('waitDelayMs', () => {
  it('keeps the asked delay for the first 100 waits, then spaces them out', () => {
    expect(waitDelayMs(20, 1)).toBe(20);
    expect(waitDelayMs(2000, 100)).toBe(2000);
    expect(waitDelayMs(20, 101)).toBe(10_000);
    expect(waitDelayMs(120_000, 300)).toBe(120_000);
    expect(waitDelayMs(20, 501)).toBe(60_000);
  });

  it('1,000 waits of a breaker reopening every 20 ms take hours', () => {
    let ms = 0;
    for (let w = 1; w <= 1000; w++) ms += waitDelayMs(20, w);
    expect(ms / 3_600_000).toBeGreaterThan(8);
  });
});
