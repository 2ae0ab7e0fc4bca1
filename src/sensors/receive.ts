// One message of one dependency, from the bus to a terminal outcome: decode and validate (the
// boundary), the redelivery bound, the dependency's filters and transform (user programs in the
// sandbox), then the triggers. Every path ends in ack (done, no match, dead-lettered), term
// (dead-lettered unhandled) or nak (deferred: an open breaker, a busy sandbox, a bus error); a
// filter that merely does not match is the only quiet outcome.
import type { JsMsg } from '@nats-io/jetstream';
import type { EventDependency } from '../api/sensor.ts';
import { ack, nak, term, working } from '../bus/consumer.ts';
import { isOutage, toBusError } from '../bus/errors.ts';
import type { CloudEvent } from '../eventsources/envelope.ts';
import type { Logger } from '../observability/logger.ts';
import { ByteBudget } from './byte-budget.ts';
import { decodeBusEvent } from './decode.ts';
import { deadLetterEvent, type EventDeadLetterEnv, type EventFailure } from './event-dlq.ts';
import type { Delivery } from './fast-path.ts';
import { type SensorTrigger, serialized } from './fire.ts';
import { yieldIfBusy } from './inline-budget.ts';
import { JoinStateConflict } from './join-store.ts';
import { lookup, textOf } from './match/path.ts';
import { eventSeries, type SensorMetrics } from './metrics.ts';
import type { DependencyMatcher } from './options.ts';
import { isTransientEvalError, matchFailureReason } from './reasons.ts';
import { EffectNotRecorded, type Outcome } from './settle.ts';
import { WaitLedger, type WaitStore, waitDelayMs } from './waits.ts';

export interface ReceiveDeps {
  namespace: string;
  sensorName: string;
  log: Logger;
  metrics: SensorMetrics;
  triggers: readonly SensorTrigger[];
  matchers: ReadonlyMap<string, DependencyMatcher>;
  dlq: EventDeadLetterEnv;
  /** `onEffect` is called once a trigger's call succeeded (only its record and ack remain). */
  fire(
    t: SensorTrigger,
    dep: string,
    ev: CloudEvent,
    since: number,
    onEffect?: () => void,
    delivery?: Delivery,
  ): Promise<Outcome>;
  /**
   * Dead-letters and settles `t`'s in-flight firings holding `ev` of `dep` (fire.ts
   * abandonFirings), before `ev`'s message is dead-lettered for good.
   */
  abandon?(t: SensorTrigger, dep: string, ev: CloudEvent, message: string): Promise<void>;
  /** Whether `msg` of dependency `dep` is a fresh first delivery (fast-path.ts; absent: never). */
  fresh?(dep: string, msg: JsMsg): boolean;
  /** Deliveries handled before the next one dead-letters the message unhandled. */
  maxDeliveries: number;
  /**
   * The consumers' max_deliver (consumer.ts sensorMaxDeliver): the server delivers no message more
   * often, so a message that would wait past it is dead-lettered instead of left undelivered.
   */
  maxDeliver?: number;
  ackWaitMs: number;
  errorOnFailedRound: boolean;
  /** Bytes of messages handled at once (default DEFAULT_IN_FLIGHT_BYTES). */
  maxInFlightBytes?: number;
  /**
   * Durable count of a message's waits (breaker, busy sandbox), read only when a message seems
   * over its limit, so a restart during a long wait does not dead-letter what was only waiting.
   */
  deferrals?: WaitStore;
}

/** Raw bytes of events handled at once by one Sensor (their decoded form is a few times that). */
export const DEFAULT_IN_FLIGHT_BYTES = 16 * 1024 * 1024;

/** Redelivery delay of an event handed back because no sandbox worker was free (ms). */
const BUSY_RETRY_MS = 2000;

/** The orderingKey value as text: a gjson path, read like every other path of a Sensor. */
const orderingValue = (
  data: unknown,
  path: string,
): { ok: true; key: string } | { ok: false; message: string } => {
  try {
    return { ok: true, key: textOf(lookup(data, path)) };
  } catch (err) {
    return {
      ok: false,
      message: `orderingKey ${JSON.stringify(path)} cannot be read: ${(err as Error).message}`,
    };
  }
};

/**
 * Hands out `n` one-shot callbacks; `then` runs once all of them were called (at once when n is 0
 * or `then` is undefined: nothing to wait for).
 */
function countdown(n: number, then: (() => void) | undefined): () => () => void {
  let left = n;
  if (!then) return () => () => {};
  if (left === 0) then();
  return () => {
    let called = false;
    return () => {
      if (called) return;
      called = true;
      if (--left === 0) then();
    };
  };
}

/**
 * Like Promise.all, but settles only once every promise has: a trigger that failed does not end
 * the handling (and free its slot, or let stop() go on) while another trigger's call still runs.
 * Rejects with the first rejection in `ps`' order.
 */
async function allSettledOrThrow<T>(ps: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(ps);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** A failure of the bus under the event (see errors.ts isOutage), not of the event itself. */
const waitsOnBus = (err: unknown): boolean =>
  err instanceof EffectNotRecorded || err instanceof JoinStateConflict || isOutage(err);

/** What every step of one message's handling shares. */
interface Ctx {
  d: ReceiveDeps;
  waits: WaitLedger;
  /** Per orderingKey value, the tail of its queue (fire.ts serialized). */
  chains: Map<string, Promise<unknown>>;
  /** Heartbeat interval of a message under way (ms). */
  beatMs: number;
}

const labels = (c: Ctx, dep: string) => ({
  namespace: c.d.namespace,
  sensor_name: c.d.sensorName,
  dependency: dep,
});

/**
 * A message dead-lettered `max-deliveries` never comes back: the firings its event is in flight in
 * are dead-lettered and settled first (else they would stay in flight for good).
 */
async function abandonAll(c: Ctx, msg: JsMsg, dep: string, ev: CloudEvent, message: string): Promise<void> {
  const { abandon } = c.d;
  if (!abandon) return;
  const mine = c.d.triggers.filter((t) => t.dependencies.has(dep));
  await working(msg, () => Promise.all(mine.map((t) => abandon(t, dep, ev, message))), c.beatMs);
}

/** Dead-letters, then acks (term for a message that must never come back). */
async function failEvent(
  c: Ctx,
  msg: JsMsg,
  f: Omit<EventFailure, 'seq' | 'deliveries'>,
  final: 'ack' | 'term',
): Promise<void> {
  // Heartbeats: storing the record may wait on the bus (dlq-store.ts), the message stays ours.
  await working(
    msg,
    () => deadLetterEvent(c.d.dlq, { ...f, seq: msg.seq, deliveries: msg.info.deliveryCount }),
    c.beatMs,
  );
  c.d.metrics.eventsReceived.inc({ ...labels(c, f.dependency), result: 'dead-lettered' });
  if (final === 'term') term(msg, f.reason);
  else await ack(msg);
}

/**
 * Hands the message back to wait (not a handled delivery), `delayMs` later, spaced out as it
 * keeps waiting (waitDelayMs). On the last delivery the server makes (its max_deliver) a wait
 * would leave the message undelivered for good, unreported: it is dead-lettered instead.
 */
async function handBack(
  c: Ctx,
  dep: EventDependency,
  msg: JsMsg,
  ev: CloudEvent,
  delayMs: number,
  why: string,
): Promise<void> {
  const k = c.waits.key(dep.name, msg);
  const waits = await c.waits.wait(k, msg);
  const maxDeliver = c.d.maxDeliver;
  if (maxDeliver !== undefined && msg.info.deliveryCount >= maxDeliver) {
    const message = `waited ${waits} times (last: ${why}); this was delivery ${msg.info.deliveryCount}, the last the bus makes (max_deliver ${maxDeliver})`;
    await abandonAll(c, msg, dep.name, ev, message);
    await failEvent(c, msg, { dependency: dep.name, event: ev, reason: 'max-deliveries', message }, 'term');
    c.waits.forget(k);
    return;
  }
  nak(msg, waitDelayMs(delayMs, waits));
}

/**
 * The dependency's filters, then its transform: the event to fire, or undefined when the message
 * was settled here (filtered out and acked, or dead-lettered because a filter or the transform
 * cannot evaluate it). Transient evaluation errors (no free sandbox worker) are thrown.
 */
async function matchedEvent(
  c: Ctx,
  dep: EventDependency,
  msg: JsMsg,
  ev: CloudEvent,
): Promise<CloudEvent | undefined> {
  const matcher = c.d.matchers.get(dep.name)!;
  const deadLetter = async (err: unknown) => {
    if (isTransientEvalError(err)) throw err;
    const reason = matchFailureReason(err);
    const message = (err as Error).message;
    await failEvent(c, msg, { dependency: dep.name, event: ev, reason, message }, 'ack');
    return undefined;
  };
  let matched: boolean;
  try {
    matched = await matcher.matches(ev);
  } catch (err) {
    return deadLetter(err);
  }
  const result = matched ? 'matched' : 'filtered';
  eventSeries(c.d.metrics, c.d.namespace, c.d.sensorName, dep.name, result).inc();
  if (!matched) {
    await ack(msg);
    return undefined;
  }
  try {
    return await matcher.transform(ev);
  } catch (err) {
    return deadLetter(err);
  }
}

/**
 * Fires every trigger of `dep` for `event` while heartbeating `msg`, and settles only once every
 * trigger has (see allSettledOrThrow). `release` (the consume slot) is called once every
 * trigger's call is over.
 */
function fireAll(
  c: Ctx,
  dep: EventDependency,
  msg: JsMsg,
  event: CloudEvent,
  release: (() => void) | undefined,
): Promise<Outcome[]> {
  const since = Number(msg.info.timestampNanos / 1_000_000);
  let beats: Array<() => void> | undefined;
  const delivery: Delivery = {
    fresh: c.d.fresh?.(dep.name, msg) ?? false,
    onBeat: (f) => {
      beats ??= [];
      beats.push(f);
    },
  };
  const firing = c.d.triggers.filter((t) => t.dependencies.has(dep.name));
  // The slot goes back only once every trigger's call is over (its effect happened, or the trigger
  // settled otherwise): one trigger's success must not free the slot while another still calls.
  const callOver = countdown(firing.length, release);
  const fireEach = () =>
    allSettledOrThrow(
      firing.map((t) => {
        const over = callOver();
        return c.d.fire(t, dep.name, event, since, over, delivery).finally(over);
      }),
    );
  // Slow calls that skipped their claim write it at the first beat (once: the list is emptied).
  const onBeat = () => {
    const due = beats;
    beats = undefined;
    for (const f of due ?? []) f();
  };
  return working(msg, fireEach, c.beatMs, onBeat);
}

/** Filters, transform, triggers; says whether the message was settled or handed back to wait. */
async function handle(
  c: Ctx,
  dep: EventDependency,
  msg: JsMsg,
  ev: CloudEvent,
  release?: () => void,
): Promise<'settled' | 'deferred'> {
  const event = await matchedEvent(c, dep, msg, ev);
  if (!event) return 'settled';
  const outcomes = await fireAll(c, dep, msg, event, release);
  const { d } = c;
  const deferred = outcomes.filter((x): x is Extract<Outcome, { kind: 'defer' }> => x.kind === 'defer');
  if (deferred.length) {
    for (const t of d.triggers)
      if (t.breaker?.state === 'open')
        d.metrics.deferred.inc({ namespace: d.namespace, sensor_name: d.sensorName, trigger_name: t.name });
    const why = deferred.map((x) => x.reason).join('; ');
    await handBack(c, dep, msg, ev, Math.max(...deferred.map((x) => x.delayMs)), why);
    return 'deferred';
  }
  if (d.errorOnFailedRound && outcomes.some((x) => x.kind === 'dead-lettered'))
    d.log.error({ dependency: dep.name, id: ev.id }, 'a trigger failed in this round (errorOnFailedRound)');
  await ack(msg);
  return 'settled';
}

/**
 * The boundary checks before handling: the message decodes to an event, and it has not been
 * handled more often than the dependency allows. The event, or undefined when the message was
 * dead-lettered here.
 */
async function admitted(
  c: Ctx,
  dep: EventDependency,
  msg: JsMsg,
  k: string,
): Promise<CloudEvent | undefined> {
  const { d } = c;
  const decoded = decodeBusEvent(msg.data, {
    seq: msg.seq,
    timestampMs: Number(msg.info.timestampNanos / 1_000_000),
    eventSourceName: dep.eventSourceName,
    eventName: dep.eventName,
  });
  if (!decoded.ok) {
    d.metrics.eventsReceived.inc({ ...labels(c, dep.name), result: 'undecodable' });
    const f = {
      dependency: dep.name,
      reason: 'invalid-event' as const,
      message: decoded.message,
      raw: msg.data,
    };
    await failEvent(c, msg, f, 'term');
    c.waits.forget(k);
    return undefined;
  }
  const ev = decoded.event;
  if ((await c.waits.handlings(k, msg, d.maxDeliveries)) <= d.maxDeliveries) return ev;
  const last = c.waits.lastError(k);
  const why = last ? `; last error: ${last}` : '';
  const message = `delivered ${msg.info.deliveryCount} times, more than the Sensor handles (${d.maxDeliveries})${why}`;
  await abandonAll(c, msg, dep.name, ev, message);
  await failEvent(c, msg, { dependency: dep.name, event: ev, reason: 'max-deliveries', message }, 'term');
  c.waits.forget(k);
  return undefined;
}

/**
 * A handling that threw. No free sandbox worker (a flood of runaway programs, or stopping), or
 * the bus could not take a claim, a done mark or a partial match (no quorum, no leader, a foreign
 * write to the join state): not this event's fault, so the wait does not count against
 * maxDeliveries; it is handed back for later. State too large for the bus is dead-lettered.
 * Anything else is remembered and rethrown (the message is redelivered).
 */
async function handlingFailed(
  c: Ctx,
  dep: EventDependency,
  msg: JsMsg,
  ev: CloudEvent,
  k: string,
  err: unknown,
): Promise<void> {
  const { d } = c;
  const onBus = waitsOnBus(err);
  if (onBus || isTransientEvalError(err)) {
    if (onBus)
      d.log.warn(
        { dependency: dep.name, seq: msg.seq, err: d.dlq.redact((err as Error).message) },
        'the bus could not record this event now; redelivering',
      );
    d.metrics.eventsReceived.inc({ ...labels(c, dep.name), result: 'deferred' });
    await handBack(c, dep, msg, ev, BUSY_RETRY_MS, d.dlq.redact((err as Error).message));
    return;
  }
  // Larger than the bus takes (a partial match holding this event): no delivery can succeed.
  if (toBusError(err).code === 'MessageTooLarge') {
    const message = `state about this event is larger than the bus accepts: ${(err as Error).message}`;
    await failEvent(c, msg, { dependency: dep.name, event: ev, reason: 'too-large', message }, 'ack');
    c.waits.forget(k);
    return;
  }
  c.waits.failed(k, d.dlq.redact((err as Error)?.message ?? String(err)));
  throw err;
}

/** One message, from the bus to its outcome (see the top of this file). */
async function receiveOne(c: Ctx, dep: EventDependency, msg: JsMsg, release?: () => void): Promise<void> {
  // After a long stretch of inline work (many events in one turn), let I/O in first.
  const busy = yieldIfBusy();
  if (busy) await busy;
  const k = c.waits.key(dep.name, msg);
  const ev = await admitted(c, dep, msg, k);
  if (!ev) return;
  const order = dep.orderingKey ? orderingValue(ev.data, dep.orderingKey) : undefined;
  if (order && !order.ok) {
    // The same event fails the same way every time: dead-letter it, never redeliver it.
    const f = {
      dependency: dep.name,
      event: ev,
      reason: 'ordering-key-error' as const,
      message: order.message,
    };
    await failEvent(c, msg, f, 'ack');
    c.waits.forget(k);
    return;
  }
  try {
    const how = order
      ? await serialized(c.chains, `${dep.name}\u0000${order.key}`, () => handle(c, dep, msg, ev, release))
      : await handle(c, dep, msg, ev, release);
    if (how === 'settled') c.waits.forget(k);
  } catch (err) {
    await handlingFailed(c, dep, msg, ev, k, err);
  }
}

/**
 * The message handler of a Sensor: `(dependency, message, release?) → settled`. Holds at most
 * `maxInFlightBytes` of messages at once; `release` frees the consume slot once the triggers'
 * calls are over (before their records and the ack).
 */
export function messageReceiver(d: ReceiveDeps) {
  const c: Ctx = {
    d,
    waits: new WaitLedger(d.deferrals),
    chains: new Map(),
    beatMs: Math.max(1000, Math.floor(d.ackWaitMs / 3)),
  };
  const budget = new ByteBudget(d.maxInFlightBytes ?? DEFAULT_IN_FLIGHT_BYTES);
  return async (dep: EventDependency, msg: JsMsg, release?: () => void): Promise<void> => {
    const bytes = msg.data.length;
    const wait = budget.acquire(bytes);
    if (wait) await wait;
    try {
      await receiveOne(c, dep, msg, release);
    } finally {
      budget.release(bytes);
    }
  };
}
