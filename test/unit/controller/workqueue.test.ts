import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  controllerRateLimiter,
  ExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  runWorkers,
  TokenBucketRateLimiter,
  WorkQueue,
} from '../../../src/controller/workqueue.ts';

/** The key get() handed out once pending microtasks have run, or 'pending' (works under fake timers). */
async function peek(p: Promise<string | undefined>): Promise<string | undefined | 'pending'> {
  let settled: { v: string | undefined } | undefined;
  void p.then((v) => {
    settled = { v };
  });
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return settled ? settled.v : 'pending';
}

describe('rate limiters', () => {
  it('backs off per key exponentially from the base, caps, and forgets', () => {
    const rl = new ExponentialFailureRateLimiter(5, 1000);
    expect(Array.from({ length: 10 }, () => rl.when('a'))).toEqual([
      5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000,
    ]);
    expect(rl.numRequeues('a')).toBe(10);
    // Keys are independent.
    expect(rl.when('b')).toBe(5);
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.when('a')).toBe(5);
  });

  it('stays at the cap however many failures (no overflow to Infinity/NaN)', () => {
    const rl = new ExponentialFailureRateLimiter(5, 1_000_000);
    let last = 0;
    for (let i = 0; i < 2000; i++) last = rl.when('k');
    expect(last).toBe(1_000_000);
  });

  describe('token bucket', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it('allows a burst, then spaces retries at qps, and refills over time', () => {
      const rl = new TokenBucketRateLimiter(10, 3);
      expect([rl.when(), rl.when(), rl.when()]).toEqual([0, 0, 0]);
      // Each further retry reserves the next token: 100 ms apart at 10 qps.
      expect([rl.when(), rl.when(), rl.when()]).toEqual([100, 200, 300]);
      vi.advanceTimersByTime(10_000);
      expect(rl.when()).toBe(0);
    });

    it('bounds the overall rate even when every key is new (max of both limiters)', () => {
      const rl = controllerRateLimiter({ qps: 10, burst: 2 });
      expect(rl.when('a')).toBe(5);
      expect(rl.when('b')).toBe(5);
      expect(rl.when('c')).toBe(100);
      expect(rl.when('d')).toBe(200);
      // Per-key history still counts for numRequeues.
      expect(rl.numRequeues('a')).toBe(1);
      rl.forget('a');
      expect(rl.numRequeues('a')).toBe(0);
    });
  });

  it('MaxOf needs at least one limiter', () => {
    expect(() => new MaxOfRateLimiter()).toThrow();
  });
});

describe('WorkQueue', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('hands out in FIFO order and dedupes keys added while queued', async () => {
    const q = new WorkQueue();
    for (const k of ['a', 'b', 'a', 'c', 'b', 'a']) q.add(k);
    expect(q.len()).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['a', 'b', 'c']);
    expect(q.len()).toBe(0);
  });

  it('never hands out a key that is being processed; a re-add comes back once after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    q.add('a');
    q.add('b');
    // Only b is available while a is processed.
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('b');
    const next = q.get();
    expect(await peek(next)).toBe('pending');
    q.done('a');
    expect(await next).toBe('a');
    q.done('a');
    q.done('b');
    expect(q.len()).toBe(0);
    expect(await peek(q.get())).toBe('pending');
  });

  it('a key not re-added is not handed out again after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    q.done(k!);
    expect(q.len()).toBe(0);
    // done() of an unknown key is harmless.
    q.done('zzz');
    expect(q.len()).toBe(0);
  });

  it('wakes a waiting get() on add', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    expect(await peek(waiting)).toBe('pending');
    q.add('x');
    expect(await waiting).toBe('x');
  });

  it('addAfter delays a key; the earliest of several delayed adds wins and duplicates collapse', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 100);
    q.addAfter('a', 50);
    q.addAfter('a', 200);
    q.addAfter('b', 70);
    q.addAfter('c', 0); // immediate
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('c');
    await vi.advanceTimersByTimeAsync(49);
    expect(q.len()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    await vi.advanceTimersByTimeAsync(20);
    expect(await q.get()).toBe('b');
    // The superseded 100 ms and 200 ms entries for a do not come back.
    q.done('a');
    await vi.advanceTimersByTimeAsync(500);
    expect(q.len()).toBe(0);
  });

  it('a delayed add of a key that is already queued does not queue it twice', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.addAfter('a', 10);
    await vi.advanceTimersByTimeAsync(10);
    expect(q.len()).toBe(1);
  });

  it('addRateLimited grows the delay per failure up to the cap; forget resets it', async () => {
    const q2 = new WorkQueue({
      rateLimiter: controllerRateLimiter({ baseDelayMs: 10, maxDelayMs: 80, qps: 1000, burst: 1000 }),
    });
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = Date.now();
      q2.addRateLimited('k');
      let waited = 0;
      while (q2.len() === 0) {
        await vi.advanceTimersByTimeAsync(1);
        waited++;
      }
      seen.push(waited);
      const k = await q2.get();
      q2.done(k!);
      expect(Date.now() - t0).toBe(waited);
    }
    expect(seen).toEqual([10, 20, 40, 80, 80, 80]);
    expect(q2.numRequeues('k')).toBe(6);
    q2.forget('k');
    expect(q2.numRequeues('k')).toBe(0);
    q2.addRateLimited('k');
    await vi.advanceTimersByTimeAsync(9);
    expect(q2.len()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q2.len()).toBe(1);
  });

  it('shutDown: waiting gets resolve undefined, queued keys still drain, new and delayed adds are dropped', async () => {
    const q = new WorkQueue();
    const idle = new WorkQueue();
    const waiting = idle.get();
    idle.shutDown();
    expect(await waiting).toBeUndefined();
    expect(await idle.get()).toBeUndefined();

    q.add('a');
    q.add('b');
    q.addAfter('later', 10);
    q.shutDown();
    expect(q.isShuttingDown()).toBe(true);
    q.add('c');
    q.addRateLimited('d');
    await vi.advanceTimersByTimeAsync(100);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(await q.get()).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('shutDownWithDrain waits until processing keys are done, including a re-added one', async () => {
    const q = new WorkQueue();
    q.add('a');
    const a = await q.get();
    q.add('a'); // dirty while processing: comes back after done
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => {
      drained = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(false);
    q.done(a!);
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(false);
    expect(await q.get()).toBe('a');
    q.done('a');
    await drain;
    expect(drained).toBe(true);
  });

  it('reports depth, adds, queue latency, work duration and retries through hooks', async () => {
    const depth: number[] = [];
    const adds: string[] = [];
    const latency: number[] = [];
    const work: number[] = [];
    const retries: string[] = [];
    const q = new WorkQueue({
      rateLimiter: new ExponentialFailureRateLimiter(5, 100),
      hooks: {
        depth: (n) => depth.push(n),
        add: (k) => adds.push(k),
        queueLatency: (s) => latency.push(s),
        workDuration: (s) => work.push(s),
        retry: (k) => retries.push(k),
      },
    });
    q.add('a');
    q.add('a');
    q.add('b');
    await vi.advanceTimersByTimeAsync(250);
    const a = await q.get();
    await vi.advanceTimersByTimeAsync(1500);
    q.done(a!);
    q.addRateLimited('a');
    expect(adds).toEqual(['a', 'b']);
    expect(depth).toEqual([1, 2, 1]);
    expect(latency).toEqual([0.25]);
    expect(work).toEqual([1.5]);
    expect(retries).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(5);
    expect(adds).toEqual(['a', 'b', 'a']);
  });
});

describe('runWorkers', () => {
  afterEach(() => vi.useRealTimers());

  it('never runs more than n handlers at once and never the same key twice at once', async () => {
    const q = new WorkQueue();
    let inFlight = 0;
    let maxInFlight = 0;
    const active = new Set<string>();
    let overlap = false;
    const calls = new Map<string, number>();
    const done = runWorkers(q, 3, async (key) => {
      if (active.has(key)) overlap = true;
      active.add(key);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      calls.set(key, (calls.get(key) ?? 0) + 1);
      // Re-adding itself while running must not start a parallel run of the same key.
      if ((calls.get(key) ?? 0) === 1) q.add(key);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      active.delete(key);
    });
    for (let i = 0; i < 12; i++) q.add(`k${i % 6}`);
    await vi.waitFor(() => expect([...calls.values()].reduce((a, b) => a + b, 0)).toBe(12), {
      timeout: 2000,
    });
    await q.shutDownWithDrain();
    await done;
    expect(maxInFlight).toBe(3);
    expect(overlap).toBe(false);
    // Each of the 6 keys ran exactly twice: once, then once more for its own re-add.
    expect([...calls.values()]).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it('retries failures with backoff, forgets on success, and honours requeueAfterMs', async () => {
    vi.useFakeTimers();
    const q = new WorkQueue({
      rateLimiter: controllerRateLimiter({ baseDelayMs: 10, maxDelayMs: 1000, qps: 1000, burst: 1000 }),
    });
    const times: number[] = [];
    const errors: Array<[string, number]> = [];
    const t0 = Date.now();
    let requeues = 0;
    const done = runWorkers(
      q,
      1,
      async (key) => {
        times.push(Date.now() - t0);
        if (times.length <= 3) throw new Error(`fail ${times.length}`);
        if (times.length === 4) {
          requeues = q.numRequeues(key);
          return { requeueAfterMs: 500 };
        }
        return undefined;
      },
      { onError: (key, _err, retries) => errors.push([key, retries]) },
    );
    q.add('k');
    await vi.advanceTimersByTimeAsync(69);
    // Attempts at 0, +10, +20, +40 ms: 0, 10, 30, 70.
    expect(times).toEqual([0, 10, 30]);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([0, 10, 30, 70]);
    expect(errors).toEqual([
      ['k', 0],
      ['k', 1],
      ['k', 2],
    ]);
    expect(requeues).toBe(3);
    // Success forgot the history...
    expect(q.numRequeues('k')).toBe(0);
    // ...and requeueAfterMs brings it back after 500 ms.
    await vi.advanceTimersByTimeAsync(499);
    expect(times).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([0, 10, 30, 70, 570]);
    q.shutDown();
    await done;
  });

  it('resolves once the queue is shut down and the queued keys are drained', async () => {
    const q = new WorkQueue();
    const seen: string[] = [];
    for (const k of ['a', 'b', 'c']) q.add(k);
    q.shutDown();
    await runWorkers(q, 2, async (key) => {
      seen.push(key);
    });
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
  });

  it('a handler failure during shutdown is not retried', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.shutDown();
    let calls = 0;
    await runWorkers(q, 1, async () => {
      calls++;
      throw new Error('boom');
    });
    expect(calls).toBe(1);
    expect(q.len()).toBe(0);
  });
});
