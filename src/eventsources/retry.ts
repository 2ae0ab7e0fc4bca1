// Waiting and retrying for the broker/cloud sources: an abortable sleep, and a backoff schedule
// for reconnecting (doubling from 500 ms to 30 s), so a source whose server is down keeps trying
// without spinning and stops at once when the EventSource stops.

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Reconnect waits: 500 ms, 1 s, 2 s, ... up to `capMs` (default 30 s). */
export class Backoff {
  private next: number;
  private readonly first: number;
  private readonly cap: number;

  constructor(firstMs = 500, capMs = 30_000) {
    this.first = firstMs;
    this.next = firstMs;
    this.cap = capMs;
  }

  /** The wait before the next attempt (and doubles the one after). */
  take(): number {
    const ms = this.next;
    this.next = Math.min(this.cap, this.next * 2);
    return ms;
  }

  reset(): void {
    this.next = this.first;
  }
}

/**
 * Calls `attempt` until it resolves: errors for which `fatal(err)` is true are thrown at once (bad
 * credentials, a topic that cannot exist); others are logged through `onRetry` and retried after
 * a backoff. Rejects with an AbortError-like Error when `signal` aborts first.
 */
export async function retryUntil<T>(
  attempt: () => Promise<T>,
  o: {
    signal: AbortSignal;
    fatal?: (err: unknown) => boolean;
    onRetry?: (err: unknown, waitMs: number) => void;
    backoff?: Backoff;
  },
): Promise<T> {
  const backoff = o.backoff ?? new Backoff();
  for (;;) {
    if (o.signal.aborted) throw new Error('stopped');
    try {
      return await attempt();
    } catch (err) {
      if (o.fatal?.(err) || o.signal.aborted) throw err;
      const wait = backoff.take();
      o.onRetry?.(err, wait);
      await pause(wait, o.signal);
    }
  }
}
