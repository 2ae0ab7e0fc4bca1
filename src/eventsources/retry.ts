// Waiting and retrying for the broker/cloud sources: an abortable sleep, and a backoff schedule
// for reconnecting (doubling from 500 ms to 30 s), so a source whose server is down keeps trying
// without spinning and stops at once when the EventSource stops; and `storeHeld`, the loop every
// broker/queue source stores one message with: a bus that refuses for now (down, full, slow) is
// waited out with the message held, but a definite refusal (the event is too large for the bus,
// or cannot be encoded) is returned at once, so the source can put that one message where its
// own poison handling puts it instead of blocking its partition or queue for ever.
import { BusError } from '../bus/errors.ts';
import type { SourceContext } from './adapter.ts';

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

/**
 * True for a bus answer that no retry can change: `BusError` MessageTooLarge or Invalid (the
 * same event gets the same answer for ever). StreamFull, BusUnavailable, Timeout and any other
 * error are worth retrying.
 */
export function isDefiniteRefusal(err: unknown): err is BusError {
  return err instanceof BusError && !err.retryable;
}

/** How storing one message ended: stored, refused for good (with the bus's answer), or stopped. */
export type StoreOutcome =
  | { outcome: 'stored' }
  | { outcome: 'refused'; err: BusError }
  | { outcome: 'stopped' };

/**
 * Calls `send` (one `ctx.emit` of the same event, same id every time) until it resolves. A
 * definite refusal (isDefiniteRefusal) ends at once with `refused`; any other error calls
 * `onHold(err, waitMs)` (log it, extend the message's visibility, heartbeat the group) and is
 * retried after a backoff (default 500 ms doubling to 10 s). `stopped` when `signal` aborts first.
 */
export async function storeHeld(
  send: () => Promise<unknown>,
  o: {
    signal: AbortSignal;
    onHold?: (err: unknown, waitMs: number) => void | Promise<void>;
    backoff?: Backoff;
    /** Waited before each attempt (rate limits); 0 when absent. */
    before?: () => Promise<void>;
  },
): Promise<StoreOutcome> {
  const backoff = o.backoff ?? new Backoff(500, 10_000);
  for (;;) {
    await o.before?.();
    if (o.signal.aborted) return { outcome: 'stopped' };
    try {
      await send();
      return { outcome: 'stored' };
    } catch (err) {
      if (isDefiniteRefusal(err)) return { outcome: 'refused', err };
      if (o.signal.aborted) return { outcome: 'stopped' };
      const wait = backoff.take();
      await o.onHold?.(err, wait);
      await pause(wait, o.signal);
    }
  }
}

/**
 * Records a message the bus refused for good: counted in `processingFailed` ("too-large" or
 * "refused") and logged at error with `fields` (the message's identity) and what happens to it
 * (`fate`, e.g. "committed past it").
 */
export function reportRefusal(
  ctx: Pick<SourceContext, 'log' | 'processingFailed' | 'type'>,
  fields: Record<string, unknown>,
  err: BusError,
  fate: string,
): void {
  ctx.processingFailed(err.code === 'MessageTooLarge' ? 'too-large' : 'refused');
  ctx.log.error(
    { ...fields, code: err.code, err: err.message },
    `${ctx.type}: event refused by the bus for good (no retry can store it); ${fate}`,
  );
}

/**
 * How long a queue source (sqs, azureQueueStorage) keeps a received message invisible, and how
 * often it extends that while the message is held. One object so tests can shorten both.
 */
export const queueHold = { visibilitySeconds: 60, extendEveryMs: 20_000 };
