// The wait ledger of a Sensor: per message, how many of its deliveries were waits (handed back
// because a breaker was open, no sandbox worker was free or the bus could not record it) rather
// than handlings. Waits never count against a dependency's maxDeliveries; handlings do. The
// count is kept in memory and, when the Sensor has a durable store, on the bus too, so a restart
// during a long wait does not dead-letter what was only waiting.
import type { JsMsg } from '@nats-io/jetstream';

/** Durable count of a message's waits, by ledger key. */
export interface WaitStore {
  get(key: string): Promise<number>;
  set(key: string, n: number): Promise<void>;
}

/** Per message: its waits and the last error of a failed handling. */
interface Tally {
  /** Waits in this process. */
  defers: number;
  /**
   * Waits recorded by earlier processes (read from the durable count once needed); undefined
   * until read, so a restarted Sensor never overwrites the stored count with its own smaller one.
   */
  before?: number;
  lastError?: string;
}

/** Messages tracked at once; the oldest is forgotten first. */
const MAX_TALLIES = 10_000;

/**
 * The redelivery delay of a message's `waits`-th wait: as asked for the first 100, then at least
 * 10 s, and at least 60 s after 500, so the server's room for waits (1,000 deliveries) lasts
 * about 9 hours of waiting whatever the cause (an open breaker reopening every second used it up
 * in 17 minutes), not minutes.
 */
export function waitDelayMs(askedMs: number, waits: number): number {
  if (waits <= 100) return askedMs;
  return Math.max(askedMs, waits <= 500 ? 10_000 : 60_000);
}

/** Waits and last errors of the messages of one Sensor, keyed `dependency/stream sequence`. */
export class WaitLedger {
  private readonly tallies = new Map<string, Tally>();
  private readonly store: WaitStore | undefined;

  constructor(store?: WaitStore) {
    this.store = store;
  }

  /** The ledger key of `msg` of dependency `dep`. */
  key(dep: string, msg: JsMsg): string {
    return `${dep}/${msg.seq}`;
  }

  private tally(k: string): Tally {
    let t = this.tallies.get(k);
    if (!t) {
      if (this.tallies.size >= MAX_TALLIES) this.tallies.delete(this.tallies.keys().next().value as string);
      t = { defers: 0 };
      this.tallies.set(k, t);
    }
    return t;
  }

  /**
   * Counts one more wait of `msg` (durably when there is a store) and returns its waits so far,
   * across processes. A bus that cannot take the count leaves the stored one as it was (never
   * lowered); the next wait tries again.
   */
  async wait(k: string, msg: JsMsg): Promise<number> {
    const t = this.tally(k);
    t.defers++;
    if (!this.store) return t.defers;
    try {
      // A first delivery has no earlier waits; a redelivery may have waited in an earlier process.
      t.before ??= msg.info.deliveryCount > 1 ? await this.store.get(k) : 0;
      await this.store.set(k, t.before + t.defers);
    } catch {
      // The count stays as it was.
    }
    return (t.before ?? 0) + t.defers;
  }

  /**
   * How many of `msg`'s deliveries were handlings (not waits). When that is over `max` by this
   * process's own count, the waits stored by earlier processes are read once and taken off.
   */
  async handlings(k: string, msg: JsMsg, max: number): Promise<number> {
    const t = this.tallies.get(k);
    const handled = msg.info.deliveryCount - (t?.defers ?? 0) - (t?.before ?? 0);
    if (handled <= max || !this.store || t?.before !== undefined) return handled;
    const before = await this.store.get(k);
    this.tally(k).before = before;
    return msg.info.deliveryCount - before - (t?.defers ?? 0);
  }

  /** The error of the last failed handling of the message, if any. */
  lastError(k: string): string | undefined {
    return this.tallies.get(k)?.lastError;
  }

  /** Remembers why a handling failed (said when the message is finally dead-lettered). */
  failed(k: string, message: string): void {
    this.tally(k).lastError = message;
  }

  /** The message reached an outcome: nothing more to remember. */
  forget(k: string): void {
    if (this.tallies.size) this.tallies.delete(k);
  }
}
