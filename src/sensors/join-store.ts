// The partial matches of a Sensor's multi-dependency triggers, held in memory by the process that
// consumes (the only one: one replica, or the leader) and written behind to KV. Each trigger's
// state is read from KV once, then changed in memory synchronously (so joining needs no lock held
// across a round trip), and every change is written as the trigger's whole state by one
// compare-and-set per flush: changes made in the same turn of the event loop share one write.
// A caller learns when its change is durable (`durable`), and a message is acked only after the
// change it caused is durable, so a crash loses nothing that was acked: the events whose changes
// were not written come back and join again.
//
// A compare-and-set that fails means someone else wrote the state (a previous leader still
// running, a reset by another process): the memory copy is stale, so it is dropped and reloaded
// on next use, and the changes that were not written fail (their messages are redelivered).
import type { JsonState } from '../bus/kv.ts';
import { isEmpty, type PartialMatch } from './join.ts';

/** A change that did not reach the bus: the memory copy was dropped (its message is redelivered). */
export class JoinStateConflict extends Error {
  constructor(trigger: string) {
    super(`the partial match of trigger ${trigger} was changed by another process; it will be read again`);
    this.name = 'JoinStateConflict';
  }
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface Entry {
  value: PartialMatch;
  /** KV revision the memory copy is based on (0: no key yet). */
  revision: number;
  /** Changes not yet sent, and who waits for them. */
  dirty: boolean;
  waiting: Waiter[];
  flushing: boolean;
  scheduled: boolean;
}

const empty = (): PartialMatch => ({ events: {}, inflight: {} });

/**
 * Write-behind partial-match state, one entry per trigger name. `change` applies a pure step to
 * the current state and returns its result at once, plus a promise that resolves when the change
 * is stored on the bus (rejects with JoinStateConflict or the bus error when it could not be).
 */
export class JoinStore {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly kv: JsonState<PartialMatch>;

  constructor(kv: JsonState<PartialMatch>) {
    this.kv = kv;
  }

  /** The entry of `trigger`, read from KV on first use (one read even for concurrent callers). */
  private entry(trigger: string): Entry | Promise<Entry> {
    const e = this.entries.get(trigger);
    if (e) return e;
    let p = this.loading.get(trigger);
    if (!p) {
      p = this.kv.get(trigger).then(
        (cur) => {
          this.loading.delete(trigger);
          const fresh: Entry = {
            value: { ...empty(), ...(cur?.value ?? {}) },
            revision: cur?.revision ?? 0,
            dirty: false,
            waiting: [],
            flushing: false,
            scheduled: false,
          };
          this.entries.set(trigger, fresh);
          return fresh;
        },
        (err: unknown) => {
          this.loading.delete(trigger);
          throw err;
        },
      );
      this.loading.set(trigger, p);
    }
    return p;
  }

  /**
   * Applies `f` to `trigger`'s state: `next` (if any) replaces it in memory at once. `f` runs
   * synchronously on the latest state, so two changes never see the same state. Throws what `f`
   * throws (nothing changes then).
   */
  async change<R>(
    trigger: string,
    f: (cur: PartialMatch) => { next?: PartialMatch | undefined; result: R },
  ): Promise<{ result: R; durable: Promise<void> }> {
    const got = this.entry(trigger);
    const e = got instanceof Promise ? await got : got;
    // A conflict may have dropped the entry while we waited for the read: use the current one.
    if (this.entries.get(trigger) !== e) return this.change(trigger, f);
    const { next, result } = f(e.value);
    if (!next) return { result, durable: e.dirty || e.flushing ? this.afterNextWrite(trigger, e) : DONE };
    e.value = next;
    // Nothing stored and nothing to store: no write.
    if (e.revision === 0 && !e.dirty && !e.flushing && isEmpty(next)) return { result, durable: DONE };
    e.dirty = true;
    return { result, durable: this.afterNextWrite(trigger, e) };
  }

  /** Resolves when a write that starts after now has stored the state. */
  private afterNextWrite(trigger: string, e: Entry): Promise<void> {
    const p = new Promise<void>((resolve, reject) => e.waiting.push({ resolve, reject }));
    if (!e.scheduled && !e.flushing) {
      e.scheduled = true;
      setImmediate(() => void this.flush(trigger, e));
    }
    return p;
  }

  private async flush(trigger: string, e: Entry): Promise<void> {
    e.scheduled = false;
    if (e.flushing) return;
    // Dropped (a conflict, a new leadership term) before its write: those changes are lost.
    if (this.entries.get(trigger) !== e) return this.fail(e, new JoinStateConflict(trigger));
    e.flushing = true;
    const waiting = e.waiting.splice(0);
    const value = e.value;
    e.dirty = false;
    try {
      const rev = await this.kv.update(trigger, value, e.revision);
      if (rev === undefined) {
        this.entries.delete(trigger);
        const err = new JoinStateConflict(trigger);
        for (const w of [...waiting, ...e.waiting.splice(0)]) w.reject(err);
        return;
      }
      e.revision = rev;
      for (const w of waiting) w.resolve();
    } catch (err) {
      // Not known to be written: forget the memory copy (the bus has the truth) and fail the waiters.
      this.entries.delete(trigger);
      for (const w of [...waiting, ...e.waiting.splice(0)]) w.reject(err);
      return;
    } finally {
      e.flushing = false;
    }
    if (e.waiting.length) void this.flush(trigger, e);
  }

  /** Fails every change of `e` still waiting for a write. */
  private fail(e: Entry, err: unknown): void {
    for (const w of e.waiting.splice(0)) w.reject(err);
  }

  /**
   * Forgets every memory copy (a new leadership term reads the bus again). Changes not yet
   * written fail (their messages come back); a write already on its way still reports its result.
   */
  clear(): void {
    const dropped = [...this.entries];
    this.entries.clear();
    for (const [trigger, e] of dropped) if (!e.flushing) this.fail(e, new JoinStateConflict(trigger));
  }
}

const DONE: Promise<void> = Promise.resolve();
