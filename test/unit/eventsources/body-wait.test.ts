// Reading a body that does not fit the byte budget (src/eventsources/webhook/body.ts): the idle
// time bounds a request's waits for room *together*. A large body may not fit several times over
// (room comes back, one chunk is read, the next does not fit): its client still has its 503 within
// about the idle time, not one idle time per wait (CI saw 8.9 s for a 1 MB POST beside 600
// budget holders, where the test allows 7 s).
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BodyHold, type BodyOutcome, readBody } from '../../../src/eventsources/webhook/body.ts';
import { type BudgetHolder, ByteBudget } from '../../../src/eventsources/webhook/budget.ts';

const KiB = 1024;

/** Enough of an IncomingMessage for readBody: events, pause/resume and a socket. */
function fakeRequest() {
  const socket = Object.assign(new EventEmitter(), { pause: () => {} });
  return Object.assign(new EventEmitter(), {
    destroyed: false,
    complete: false,
    paused: false,
    socket,
    pause() {
      this.paused = true;
    },
    resume() {
      this.paused = false;
    },
  });
}

/** A busy holder of `n` bytes (sending fast, so nobody may displace it). */
function blocker(budget: ByteBudget, n: number): BudgetHolder {
  const h: BudgetHolder = {
    held: 0,
    lastDataAt: Date.now(),
    startedAt: Date.now(),
    length: 1024 * KiB, // 1 MiB sent so far: fast, never judged slow here
    displaceable: true,
    small: false,
    displace() {},
  };
  expect(budget.take(h, n)).toBe(true);
  return h;
}

/** Starts reading a chunked body (no declared size) against `budget` with a 5 s idle time. */
function startRead(budget: ByteBudget) {
  const req = fakeRequest();
  const hold = new BodyHold(budget, undefined);
  let outcome: BodyOutcome | undefined;
  void readBody(req as unknown as IncomingMessage, hold, {
    max: 10 * 1024 * KiB,
    budget,
    idleMs: 5_000,
  }).then((o) => {
    outcome = o;
  });
  return { req, hold, outcome: () => outcome };
}

describe('readBody waiting for room', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers 503 once its waits add up to the idle time, however many there were', async () => {
    const budget = new ByteBudget(400 * KiB); // large requests: 300 KiB together
    const blockers = [16, 64, 64, 64, 64, 28].map((k) => blocker(budget, k * KiB));
    const { req, hold, outcome } = startRead(budget);
    req.emit('data', Buffer.alloc(16 * KiB)); // does not fit: waits
    expect(req.paused).toBe(true);
    await vi.advanceTimersByTimeAsync(3_000);
    for (const b of blockers) b.lastDataAt = Date.now(); // still sending
    budget.release(blockers[0]!); // room for the first chunk, after 3 s
    expect(req.paused).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    req.emit('data', Buffer.alloc(16 * KiB)); // the next one does not fit: waits again
    expect(req.paused).toBe(true);
    await vi.advanceTimersByTimeAsync(1_800);
    expect(outcome()).toBeUndefined(); // 4.9 s waited in all
    await vi.advanceTimersByTimeAsync(300);
    expect(outcome()).toMatchObject({ kind: 'refused', status: 503 });
    expect(hold.held).toBe(0);
  });

  it('a request that got room keeps the whole idle time for quiet gaps (waiting is not idleness)', async () => {
    const budget = new ByteBudget(400 * KiB);
    const blockers = [64, 64, 64, 64, 44].map((k) => blocker(budget, k * KiB));
    const { req, hold, outcome } = startRead(budget);
    req.emit('data', Buffer.alloc(1 * KiB));
    await vi.advanceTimersByTimeAsync(100);
    for (const b of blockers) budget.release(b);
    await vi.advanceTimersByTimeAsync(4_800); // quiet, under the idle time
    req.emit('data', Buffer.alloc(1 * KiB));
    req.emit('end');
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome()?.kind).toBe('complete');
    hold.release();
  });
});
