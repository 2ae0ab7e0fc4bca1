import { describe, expect, it } from 'vitest';
import { RateLimiter, windowMs } from '../../../src/resilience/rate-limit.ts';

describe('strict rate limiter', () => {
  it('never lets more than `limit` starts into any window', async () => {
    const rl = new RateLimiter({ limit: 5, windowMs: 200 });
    const starts: number[] = [];
    await Promise.all(
      Array.from({ length: 23 }, async () => {
        await rl.acquire();
        starts.push(performance.now());
      }),
    );
    starts.sort((a, b) => a - b);
    for (let i = 5; i < starts.length; i++) {
      // start i and start i-5 are at least one window apart
      expect(starts[i]! - starts[i - 5]!).toBeGreaterThanOrEqual(199);
    }
    // and it is not needlessly slow: 23 starts need 4 full windows
    expect(starts.at(-1)! - starts[0]!).toBeLessThan(4 * 200 + 150);
  });
  it('an aborted waiter gives up without taking a slot', async () => {
    const rl = new RateLimiter({ limit: 1, windowMs: 10_000 });
    await rl.acquire();
    const ac = new AbortController();
    const waiting = rl.acquire(ac.signal);
    ac.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(rl.delayNow()).toBeGreaterThan(0);
  });
  it('maps units to window lengths', () => {
    expect([windowMs(undefined), windowMs('Second'), windowMs('Minute'), windowMs('Hour')]).toEqual([
      1000, 1000, 60_000, 3_600_000,
    ]);
  });
});
