// Fires the triggers an event makes ready. A single-dependency trigger runs at once; a trigger
// that joins several dependencies goes through its partial match (join.ts, pure), held in memory
// and written behind to KV (join-store.ts). A firing moves its events to the in-flight set, and
// that change is stored before the trigger runs; after it settled, its events are marked used and
// the firing leaves the in-flight set, and that change too is stored before the message is acked.
// A crash anywhere leaves the triggering message un-acked: its redelivery finds its event in
// flight and settles that firing again (the processed-set makes a repeat a no-op).
import { evaluateConditions } from '../api/conditions.ts';
import { kvKey, type ProcessedSet } from '../bus/kv.ts';
import type { CloudEvent } from '../eventsources/envelope.ts';
import type { Logger } from '../observability/logger.ts';
import { parsePending } from './claims.ts';
import type { DoneIndex } from './done-index.ts';
import type { Delivery } from './fast-path.ts';
import {
  type Firing,
  firingsOf,
  type JoinResult,
  type JoinTrigger,
  joinEvent,
  type PartialMatch,
  settleFiring,
  stateBytes,
  withoutFiringsOf,
} from './join.ts';
import type { JoinStore } from './join-store.ts';
import type { DeadLetterReason } from './reasons.ts';
import type { ResetSchedule } from './resets.ts';
import { idempotencyKey, type Outcome, type PreparedTrigger } from './settle.ts';
import type { EventsByDependency } from './triggers/trigger.ts';

export interface SensorTrigger extends PreparedTrigger, JoinTrigger {
  resets?: ResetSchedule;
}

export interface FireDeps {
  namespace: string;
  sensorName: string;
  processed: ProcessedSet;
  /** Partial matches, in memory and written behind (join-store.ts). */
  joins: JoinStore;
  log: Logger;
  /**
   * Runs `t` for `events` (settle with the Sensor's environment); `delivery` only for a firing of
   * one dependency (it may skip the claim).
   */
  run(
    t: SensorTrigger,
    events: EventsByDependency,
    since: number,
    onEffect?: () => void,
    delivery?: Delivery,
  ): Promise<Outcome>;
  /** Keys that may have been written (absent or not ready: every "used" mark is read). */
  index?: DoneIndex;
  /** Dead-letters `t` for `events` without running it (settle.ts rejectTrigger). */
  reject(
    t: SensorTrigger,
    events: EventsByDependency,
    reason: DeadLetterReason,
    message: string,
  ): Promise<Outcome>;
  /** Largest partial-match state, as JSON bytes (a KV value must fit in one bus message). */
  maxStateBytes: number;
  /** Counts a recorded event replaced by a newer one of the same dependency. */
  onReplaced?(trigger: string): void;
  /** Counts recorded (or arriving) events dropped by a conditionsReset or a spec change. */
  onDiscarded?(trigger: string, count: number): void;
}

/** A partial match that would not fit in one KV value (see FireDeps.maxStateBytes). */
class StateTooLarge extends Error {}

/**
 * Runs `fn` after every earlier call with the same key has settled (a per-key queue); the map
 * entry goes away when the queue is empty.
 */
export function serialized<T>(
  queues: Map<string, Promise<unknown>>,
  key: string,
  fn: () => Promise<T>,
): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => {});
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return next;
}

/** The processed-set key marking `ev` used by a firing of `t`. */
const usedKey = (t: SensorTrigger, ev: CloudEvent) => `used/${t.name}/${ev.source}/${ev.subject}/${ev.id}`;

type Step<R> = (cur: PartialMatch) => { next?: PartialMatch | undefined; result: R };
type Changed<R> = { result: R; durable: Promise<void> };

/** One change of a trigger's partial match in memory, refused when it would not fit in KV. */
function change<R>(d: FireDeps, t: SensorTrigger, f: Step<R>): Promise<Changed<R>> {
  return d.joins.change(t.name, (cur) => {
    const r = f(cur);
    if (r.next) {
      const bytes = stateBytes(r.next);
      if (bytes > d.maxStateBytes)
        throw new StateTooLarge(
          `the partial match of trigger ${t.name} would be ${bytes} bytes with this event, over the ${d.maxStateBytes} one KV value holds; the event cannot wait for the other dependencies`,
        );
    }
    return r;
  });
}

/** Reads the used mark only when the done-key index cannot rule it out. */
const wasUsed = (d: FireDeps, key: string): boolean | Promise<boolean> =>
  d.index?.ready && !d.index.mightHave(kvKey(key)) ? false : d.processed.has(key);

/** Adds `ev` to `t`'s partial match: the firings it completes (or already belongs to). */
async function join(d: FireDeps, t: SensorTrigger, dep: string, ev: CloudEvent): Promise<Changed<Firing[]>> {
  // An event whose firing ran before (its message came back, or it was published again): no
  // new firing; one still recorded in flight (its last write was lost) is removed now.
  if (await wasUsed(d, usedKey(t, ev)))
    return change<Firing[]>(d, t, (state) => ({ next: withoutFiringsOf(state, dep, ev), result: [] }));
  const resetAt = t.resets?.lastResetAt();
  return change<Firing[]>(d, t, (state) => {
    const r = joinEvent(state, t, dep, ev, {
      ...(resetAt !== undefined ? { resetAt } : {}),
      keyOf: (fired) => idempotencyKey(d.namespace, d.sensorName, t.name, fired),
    });
    report(d, t, dep, ev, r);
    return { next: r.next, result: r.firings };
  });
}

/** Counts and logs the recorded events a join step replaced or discarded. */
function report(d: FireDeps, t: SensorTrigger, dep: string, ev: CloudEvent, r: JoinResult): void {
  if (r.replaced) {
    // One per event when one dependency runs ahead of the other: counted, logged at debug only.
    d.onReplaced?.(t.name);
    d.log.debug(
      { trigger: t.name, dependency: dep, id: ev.id, replaced: r.replaced },
      'a newer event replaced the recorded one of its dependency (latest wins, as upstream)',
    );
  }
  if (r.discarded || r.tooOld) {
    d.onDiscarded?.(t.name, r.discarded + (r.tooOld ? 1 : 0));
    d.log.info(
      { trigger: t.name, discarded: r.discarded, eventTooOld: r.tooOld, id: ev.id },
      'partial condition matches discarded (older than the last conditionsReset, or recorded under another spec)',
    );
  }
}

/**
 * Runs the firings a join produced, in order: each call, then its events marked used, then the
 * firing removed from the in-flight set and that change stored. A deferred call stops there (the
 * firing stays in flight; the redelivery retries it).
 */
async function runFirings(
  d: FireDeps,
  t: SensorTrigger,
  firings: Firing[],
  since: number,
  onEffect: (() => void) | undefined,
): Promise<Outcome> {
  let last: Outcome = { kind: 'done', detail: '' };
  for (const [i, [key, fired]] of firings.entries()) {
    // Only the last call's effect frees the handler's slot: earlier firings' calls precede it.
    const isLast = i === firings.length - 1;
    const outcome = await d.run(t, fired, since, isLast ? onEffect : undefined);
    if (outcome.kind === 'defer') return outcome;
    await retire(d, t, key, fired);
    last = outcome;
  }
  return last;
}

/** A settled firing: its events marked used, then the firing removed from the in-flight set (stored). */
async function retire(d: FireDeps, t: SensorTrigger, key: string, fired: Record<string, CloudEvent>) {
  await Promise.all(Object.values(fired).map((e) => d.processed.markIfAbsent(usedKey(t, e))));
  const settled = await change(d, t, (state) => ({ next: settleFiring(state, key), result: undefined }));
  await settled.durable;
}

/** Whether the firing's call is recorded done in the processed set (not merely claimed). */
async function firingDone(d: FireDeps, key: string): Promise<boolean> {
  const e = await d.processed.kv.get(kvKey(key));
  return e?.operation === 'PUT' && parsePending(e.string()) === undefined;
}

/**
 * Dead-letters (`reason`, with all their events) and then settles the in-flight firings of `t`
 * that hold `ev` of `dep`, whose message is about to be dead-lettered for good (max-deliveries):
 * nothing would settle them after that, and their other events, acked when they started waiting,
 * would stay in flight with no record naming them, and run the firing again if published again.
 */
export async function abandonFirings(
  d: FireDeps,
  t: SensorTrigger,
  dep: string,
  ev: CloudEvent,
  reason: DeadLetterReason,
  message: string,
): Promise<void> {
  if (evaluateConditions(t.conditions, new Set([dep]))) return;
  const { result: mine } = await change(d, t, (state) => ({ result: firingsOf(state, dep, ev) }));
  for (const [key, fired] of mine) {
    // Its call ran and was recorded (a crash came before it left the in-flight set): not a failure.
    if (!(await firingDone(d, key))) await d.reject(t, fired, reason, message);
    await retire(d, t, key, fired);
  }
}

/** The firing function of a Sensor: `(trigger, dependency, event, since) → outcome`. */
export function triggerFirer(d: FireDeps) {
  return async (
    t: SensorTrigger,
    dep: string,
    ev: CloudEvent,
    since: number,
    onEffect?: () => void,
    delivery?: Delivery,
  ): Promise<Outcome> => {
    if (evaluateConditions(t.conditions, new Set([dep])))
      return d.run(t, { [dep]: ev }, since, onEffect, delivery);
    let joined: Changed<Firing[]>;
    try {
      joined = await join(d, t, dep, ev);
    } catch (err) {
      if (!(err instanceof StateTooLarge)) throw err;
      return d.reject(t, { [dep]: ev }, 'join-too-large', err.message);
    }
    // The firing (events moved to in flight) is stored before its trigger runs; a waiting event's
    // message is acked only once it is stored.
    await joined.durable;
    if (!joined.result.length) return { kind: 'done', detail: 'waiting for more dependencies' };
    return runFirings(d, t, joined.result, since, onEffect);
  };
}
