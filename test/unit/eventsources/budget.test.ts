// The process-wide byte budget of webhook bodies (src/eventsources/webhook/budget.ts): a quarter
// kept for small requests, displacement of large quiet uploads by small requests only, waiting
// (backpressure) bounded by bytes, resumption when room comes back.
import { describe, expect, it } from 'vitest';
import { type BudgetHolder, ByteBudget, ConnectionGate } from '../../../src/eventsources/webhook/budget.ts';

function holder(small: boolean, quietSinceMs = 0): BudgetHolder & { displaced: boolean } {
  const h = {
    held: 0,
    lastDataAt: quietSinceMs,
    displaceable: true,
    small,
    displaced: false,
    displace() {
      h.displaced = true;
    },
  };
  return h;
}

const KiB = 1024;

describe('ByteBudget', () => {
  it('large requests use at most three quarters; the last quarter is for small ones', () => {
    const b = new ByteBudget(400 * KiB);
    const big = holder(false);
    expect(b.take(big, 300 * KiB, 0)).toBe(true);
    expect(b.take(holder(false), 1 * KiB, 0)).toBe(false);
    const small = holder(true);
    expect(b.take(small, 60 * KiB, 0)).toBe(true);
    expect(b.used).toBe(360 * KiB);
    b.release(big);
    b.release(small);
    expect(b.used).toBe(0);
    expect(big.held).toBe(0);
  });

  it('a small request displaces the largest quiet uploads holding at least twice what it needs', () => {
    const b = new ByteBudget(400 * KiB);
    const a = holder(false);
    const c = holder(false);
    b.take(a, 150 * KiB, 0);
    b.take(c, 150 * KiB, 0);
    const smalls = [holder(true), holder(true)];
    for (const s of smalls) expect(b.take(s, 50 * KiB, 0)).toBe(true);
    // Full: a third small request must displace, and only quiet (>= 250 ms) large ones qualify.
    const late = holder(true);
    expect(b.take(late, 10 * KiB, 100)).toBe(false);
    expect(b.take(late, 10 * KiB, 1_000)).toBe(true);
    expect([a.displaced, c.displaced].filter(Boolean)).toHaveLength(1);
    expect(b.displaced).toBe(1);
    // A large request never displaces.
    const other = holder(false);
    expect(b.take(other, 200 * KiB, 10_000)).toBe(false);
  });

  it('a waiting request is resumed, in order, once its bytes fit; waiting bytes are bounded', () => {
    const b = new ByteBudget(800 * KiB);
    const full = holder(false);
    b.take(full, 600 * KiB, 0);
    const order: string[] = [];
    const w1 = holder(false);
    const w2 = holder(false);
    expect(b.canWait(64 * KiB)).toBe(true);
    b.wait(w1, 64 * KiB, 64 * KiB, () => order.push('w1'));
    b.wait(w2, 64 * KiB, 36 * KiB, () => order.push('w2'));
    expect(b.waiting).toBe(100 * KiB);
    expect(b.canWait(1 * KiB)).toBe(false); // an eighth of 800 KiB is waiting already
    b.release(full);
    expect(order).toEqual(['w1', 'w2']);
    expect(b.waiting).toBe(0);
  });

  it('calls onDrained once it empties after more than half was in use', () => {
    const b = new ByteBudget(100);
    let drained = 0;
    b.onDrained = () => drained++;
    const h = holder(true);
    b.take(h, 40, 0);
    b.release(h);
    expect(drained).toBe(0);
    b.take(h, 60, 0);
    b.release(h);
    expect(drained).toBe(1);
  });
});

describe('ConnectionGate', () => {
  it('admits up to its capacity and counts refusals', () => {
    const g = new ConnectionGate(2);
    expect([g.enter(), g.enter(), g.enter()]).toEqual([true, true, false]);
    g.leave();
    expect(g.enter()).toBe(true);
    expect(g.refused).toBe(1);
    expect(g.current).toBe(2);
  });
});
