// Strict rate limit: never more than `limit` starts in any window of `windowMs`, however the
// starts are spread (a sliding log of the last `limit` start times, not a refilling bucket, so
// there are no bursts at window edges). Waiters are served in arrival order. The window is
// stretched by a small guard (2%, at most 20 ms) so that the limit also holds as the target sees
// it: a first request that had to open a connection arrives later than one on a warm connection.

export interface RateLimiterOptions {
  limit: number;
  windowMs: number;
  now?: () => number;
}

export class RateLimiter {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** Start times of the last `limit` starts, oldest first (ring buffer). */
  private readonly starts: number[];
  private head = 0;
  private count = 0;
  private tail: Promise<void> = Promise.resolve();
  /** Total time callers spent waiting, in ms (for metrics). */
  waitedMs = 0;

  constructor(o: RateLimiterOptions) {
    if (!(o.limit >= 1) || !(o.windowMs > 0))
      throw new Error('rate limit needs limit >= 1 and a positive window');
    this.limit = o.limit;
    this.windowMs = o.windowMs + Math.min(20, o.windowMs * 0.02);
    this.now = o.now ?? (() => performance.timeOrigin + performance.now());
    this.starts = new Array<number>(o.limit).fill(0);
  }

  /** How long a start now would have to wait (0 when it may start at once). */
  delayNow(): number {
    if (this.count < this.limit) return 0;
    const oldest = this.starts[this.head]!;
    return Math.max(0, oldest + this.windowMs - this.now());
  }

  /**
   * Resolves when a start is allowed and records it. Rejects with the signal's reason when the
   * signal aborts while waiting (the slot is then not taken).
   */
  acquire(signal?: AbortSignal): Promise<void> {
    const turn = this.tail.then(() => this.take(signal));
    // The queue moves on whether this waiter got its slot or gave up.
    this.tail = turn.catch(() => {});
    return turn;
  }

  private async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const wait = this.delayNow();
      if (wait <= 0) break;
      // +1 ms: timers may fire a little early relative to the clock we compare with.
      await sleep(Math.ceil(wait) + 1, signal);
      this.waitedMs += wait;
    }
    const t = this.now();
    if (this.count < this.limit) {
      this.starts[(this.head + this.count) % this.limit] = t;
      this.count++;
    } else {
      this.starts[this.head] = t;
      this.head = (this.head + 1) % this.limit;
    }
  }
}

export function windowMs(unit: string | undefined): number {
  switch (unit) {
    case 'Minute':
      return 60_000;
    case 'Hour':
      return 3_600_000;
    default:
      return 1000;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
