import { describe, expect, it } from 'vitest';
import { retryPlan } from '../../../src/resilience/backoff.ts';

describe('retryStrategy', () => {
  it('without a strategy there is one attempt', () => {
    expect(retryPlan(undefined).attempts).toBe(1);
  });
  it('steps is the total number of attempts; waits grow by factor', () => {
    const p = retryPlan({ steps: 4, duration: '1s', factor: 2 });
    expect(p.attempts).toBe(4);
    expect([1, 2, 3].map((n) => p.delayMs(n, 0))).toEqual([1000, 2000, 4000]);
  });
  it('jitter stretches a wait by up to that fraction', () => {
    const p = retryPlan({ steps: 2, duration: '100ms', jitter: '0.5' });
    expect(p.delayMs(1, 0)).toBe(100);
    expect(p.delayMs(1, 0.999)).toBe(150);
  });
  it('cap bounds every wait; integer durations are nanoseconds', () => {
    const p = retryPlan({ steps: 10, duration: 1_000_000_000, factor: 10, cap: '5s' });
    expect(p.delayMs(1, 0)).toBe(1000);
    expect(p.delayMs(3, 0)).toBe(5000);
    expect(retryPlan({ steps: 2, duration: '250000000' }).delayMs(1, 0)).toBe(250);
  });
  it('steps 0 still makes one attempt', () => {
    expect(retryPlan({ steps: 0 }).attempts).toBe(1);
  });
});
