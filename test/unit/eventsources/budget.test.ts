// The process-wide byte budget of webhook bodies (src/eventsources/webhook/budget.ts): a quarter
// kept for small requests, displacement of stalling uploads (quiet, or slower than the minimum
// rate) by any request sending at a healthy rate, waiting (backpressure) bounded by bytes,
// resumption when room comes back; and the connection bound with eviction of idle connections.
import { describe, expect, it } from 'vitest';
import { type BudgetHolder, ByteBudget } from '../../../src/eventsources/webhook/budget.ts';
import { ConnectionGate } from '../../../src/eventsources/webhook/connection-gate.ts';

/** A holder that started at `startedAt`, last got data at `lastDataAt` and has `length` bytes. */
function holder(
  small: boolean,
  o: { startedAt?: number; lastDataAt?: number; length?: number } = {},
): BudgetHolder & { displaced: boolean; length: number } {
  const h = {
    held: 0,
    startedAt: o.startedAt ?? 0,
    lastDataAt: o.lastDataAt ?? o.startedAt ?? 0,
    length: o.length ?? 0,
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
  it('tiny requests keep the last sixteenth when small holders fill the rest (never-quiet 64 KiB uploads)', () => {
    const b = new ByteBudget(1024 * KiB);
    // 15 busy, fresh small uploads of 64 KiB: none is stalling, so none can be displaced.
    for (let i = 0; i < 15; i++)
      expect(b.take(holder(true, { startedAt: 0, lastDataAt: 0 }), 64 * KiB, 0)).toBe(true);
    expect(b.take(holder(true, { startedAt: 0 }), 64 * KiB, 0)).toBe(false);
    const tiny = { ...holder(true), tiny: true };
    expect(b.take(tiny, 1 * KiB, 0)).toBe(true);
    expect(b.used).toBe(15 * 64 * KiB + 1 * KiB);
  });
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

  it('slow uploads may be displaced by any request, quiet ones only by small requests; a stalling request displaces nobody', () => {
    const b = new ByteBudget(400 * KiB); // large requests: 300 KiB together
    // At t=0: a large upload that then goes quiet, one that keeps sending fast, and a small one
    // that gets 64 KiB at once and then trickles (never quiet).
    const quietBig = holder(false, { length: 150 * KiB });
    const healthy = holder(false, { lastDataAt: 900, length: 130 * KiB });
    const trickler = holder(true, { lastDataAt: 990, length: 64 * KiB });
    b.take(quietBig, 150 * KiB, 0);
    b.take(healthy, 130 * KiB, 0);
    b.take(trickler, 64 * KiB, 0);
    // t=1000: quietBig is quiet but not slow (150 KiB/s): a fresh large request may not displace it.
    const large = holder(false, { startedAt: 1_000 });
    expect(b.take(large, 50 * KiB, 1_000)).toBe(false);
    // A small request needing at most half of what it holds may.
    const small = holder(true, { startedAt: 1_000 });
    expect(b.take(small, 60 * KiB, 1_000)).toBe(true);
    expect([quietBig.displaced, healthy.displaced, trickler.displaced]).toEqual([true, false, false]);
    small.displaceable = false; // got its body, waits for the bus: keeps its bytes
    // t=2500: the trickler averages 25.6 KiB/s, under the minimum rate: slow, though never quiet.
    trickler.lastDataAt = 2_450;
    healthy.lastDataAt = 2_450;
    healthy.length = 300 * KiB;
    // A request that is slow itself displaces nobody.
    const crawler = holder(false, { lastDataAt: 2_450, length: 1 * KiB });
    expect(b.take(crawler, 100 * KiB, 2_500)).toBe(false);
    // A fresh large one displaces the slow trickler (and never the healthy upload).
    const fresh = holder(false, { startedAt: 2_400, lastDataAt: 2_500, length: 100 * KiB });
    expect(b.take(fresh, 100 * KiB, 2_500)).toBe(true);
    expect([trickler.displaced, healthy.displaced]).toEqual([true, false]);
    expect(b.displaced).toBe(2);
  });

  it('a large request kept waiting by small ones gets in by displacing slow ones when it is woken', () => {
    const b = new ByteBudget(400 * KiB); // large requests: 300 KiB together
    const healthy = holder(false, { lastDataAt: 2_900, length: 200 * KiB });
    b.take(healthy, 200 * KiB, 0);
    // Two small ones that got 64 KiB at once and then trickle: they use the small reserve.
    const tricklers = [holder(true, { length: 64 * KiB }), holder(true, { length: 64 * KiB })];
    for (const t of tricklers) {
      b.take(t, 64 * KiB, 0);
      t.lastDataAt = 2_900;
    }
    const passer = holder(true, { startedAt: 0 });
    b.take(passer, 1 * KiB, 0);
    // t=500: a large request does not fit (nothing is slow yet) and waits.
    const large = holder(false, { startedAt: 450, lastDataAt: 500, length: 32 * KiB });
    expect(b.take(large, 32 * KiB, 500)).toBe(false);
    let resumed = 0;
    b.wait(large, 32 * KiB, 16 * KiB, () => resumed++, 500);
    // t=3000: a small request ends; the waiter still does not fit, but may now displace a slow
    // trickler (21 KiB/s). Its 2.5 s of waiting count neither as quiet nor against its rate.
    b.release(passer, 3_000);
    expect(resumed).toBe(1);
    expect(tricklers.filter((t) => t.displaced)).toHaveLength(1);
    expect(large.startedAt).toBe(2_950);
    expect(b.waiting).toBe(0);
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
  const sock = () => {
    const s = {
      destroyed: false,
      destroy() {
        s.destroyed = true;
      },
    };
    return s;
  };

  it('at the bound, evicts the oldest connection without a request in progress; refuses when none', () => {
    const g = new ConnectionGate(3);
    const [a, b, c, d, e] = [sock(), sock(), sock(), sock(), sock()];
    expect([g.enter(a), g.enter(b), g.enter(c)]).toEqual([true, true, true]);
    g.busy(a); // a request in progress on the oldest: it stays
    expect(g.enter(d)).toBe(true);
    expect([a.destroyed, b.destroyed, c.destroyed]).toEqual([false, true, false]);
    g.busy(c);
    g.busy(d);
    expect(g.enter(e)).toBe(false);
    expect([g.evicted, g.refused, g.current]).toEqual([1, 1, 3]);
    g.idle(a); // answered: idle again (the newest idle one)
    expect(g.enter(e)).toBe(true);
    expect(a.destroyed).toBe(true);
    g.leave(c);
    expect(g.current).toBe(2);
  });
});
