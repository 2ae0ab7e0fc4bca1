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
  deferrals?: { get(key: string): Promise<number>; set(key: string, n: number): Promise<void> };
}

/** Raw bytes of events handled at once by one Sensor (their decoded form is a few times that). */
export const DEFAULT_IN_FLIGHT_BYTES = 16 * 1024 * 1024;

/** Per message: deliveries handed back to wait (not counted against maxDeliveries) and the last error. */
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
const MAX_TALLIES = 10_000;
/** Redelivery delay of an event handed back because no sandbox worker was free (ms). */
const BUSY_RETRY_MS = 2000;

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

/** The message handler of a Sensor: `(dependency, message) → settled`. */
export function messageReceiver(d: ReceiveDeps) {
  const chains = new Map<string, Promise<unknown>>();
  const tallies = new Map<string, Tally>();
  const tallyKey = (dep: EventDependency, msg: JsMsg) => `${dep.name}/${msg.seq}`;
  const tally = (k: string): Tally => {
    let t = tallies.get(k);
    if (!t) {
      if (tallies.size >= MAX_TALLIES) tallies.delete(tallies.keys().next().value as string);
      t = { defers: 0 };
      tallies.set(k, t);
    }
    return t;
  };
  /** Counts a wait (not a handled delivery), durably when the Sensor keeps deferrals. */
  const deferred1 = async (k: string, msg: JsMsg): Promise<number> => {
    const t = tally(k);
    t.defers++;
    const store = d.deferrals;
    if (!store) return t.defers;
    try {
      // A first delivery has no earlier waits; a redelivery may have waited in an earlier process.
      t.before ??= msg.info.deliveryCount > 1 ? await store.get(k) : 0;
      await store.set(k, t.before + t.defers);
    } catch {
      // The bus is down: the stored count stays as it was (never lowered); the next wait tries again.
    }
    return (t.before ?? 0) + t.defers;
  };
  const labels = (dep: string) => ({ namespace: d.namespace, sensor_name: d.sensorName, dependency: dep });

  /** Dead-letters, then acks (term for a message that must never come back). */
  const failEvent = async (
    msg: JsMsg,
    f: Omit<EventFailure, 'seq' | 'deliveries'>,
    final: 'ack' | 'term',
  ) => {
    // Heartbeats: storing the record may wait on the bus (dlq-store.ts), the message stays ours.
    await working(
      msg,
      () => deadLetterEvent(d.dlq, { ...f, seq: msg.seq, deliveries: msg.info.deliveryCount }),
      Math.max(1000, Math.floor(d.ackWaitMs / 3)),
    );
    d.metrics.eventsReceived.inc({ ...labels(f.dependency), result: 'dead-lettered' });
    if (final === 'term') term(msg, f.reason);
    else await ack(msg);
  };

  /**
   * Hands the message back to wait (not a handled delivery), `delayMs` later, spaced out as it
   * keeps waiting (waitDelayMs). On the last delivery the server makes (its max_deliver) a wait
   * would leave the message undelivered for good, unreported: it is dead-lettered instead.
   */
  const handBack = async (dep: EventDependency, msg: JsMsg, ev: CloudEvent, delayMs: number, why: string) => {
    const k = tallyKey(dep, msg);
    const waits = await deferred1(k, msg);
    if (d.maxDeliver !== undefined && msg.info.deliveryCount >= d.maxDeliver) {
      const message = `waited ${waits} times (last: ${why}); this was delivery ${msg.info.deliveryCount}, the last the bus makes (max_deliver ${d.maxDeliver})`;
      await failEvent(msg, { dependency: dep.name, event: ev, reason: 'max-deliveries', message }, 'term');
      tallies.delete(k);
      return;
    }
    nak(msg, waitDelayMs(delayMs, waits));
  };

  /** Filters, transform, triggers; says whether the message was settled or handed back to wait. */
  const handle = async (
    dep: EventDependency,
    msg: JsMsg,
    ev: CloudEvent,
    release?: () => void,
  ): Promise<'settled' | 'deferred'> => {
    const matcher = d.matchers.get(dep.name)!;
    let matched: boolean;
    try {
      matched = await matcher.matches(ev);
    } catch (err) {
      if (isTransientEvalError(err)) throw err;
      const reason = matchFailureReason(err);
      await failEvent(
        msg,
        { dependency: dep.name, event: ev, reason, message: (err as Error).message },
        'ack',
      );
      return 'settled';
    }
    eventSeries(d.metrics, d.namespace, d.sensorName, dep.name, matched ? 'matched' : 'filtered').inc();
    if (!matched) {
      await ack(msg);
      return 'settled';
    }
    let event: CloudEvent;
    try {
      event = await matcher.transform(ev);
    } catch (err) {
      if (isTransientEvalError(err)) throw err;
      const reason = matchFailureReason(err);
      await failEvent(
        msg,
        { dependency: dep.name, event: ev, reason, message: (err as Error).message },
        'ack',
      );
      return 'settled';
    }
    const since = Number(msg.info.timestampNanos / 1_000_000);
    let beats: Array<() => void> | undefined;
    const delivery: Delivery = {
      fresh: d.fresh?.(dep.name, msg) ?? false,
      onBeat: (f) => {
        beats ??= [];
        beats.push(f);
      },
    };
    const firing = d.triggers.filter((t) => t.dependencies.has(dep.name));
    // The slot goes back only once every trigger's call is over (its effect happened, or the trigger
    // settled otherwise): one trigger's success must not free the slot while another still calls.
    const callOver = countdown(firing.length, release);
    const outcomes = await working(
      msg,
      () =>
        allSettledOrThrow(
          firing.map((t) => {
            const over = callOver();
            return d.fire(t, dep.name, event, since, over, delivery).finally(over);
          }),
        ),
      Math.max(1000, Math.floor(d.ackWaitMs / 3)),
      () => {
        // Slow calls that skipped their claim write it now (once: the list is emptied).
        const due = beats;
        beats = undefined;
        for (const f of due ?? []) f();
      },
    );
    const deferred = outcomes.filter((x): x is Extract<Outcome, { kind: 'defer' }> => x.kind === 'defer');
    if (deferred.length) {
      for (const t of d.triggers)
        if (t.breaker?.state === 'open')
          d.metrics.deferred.inc({ namespace: d.namespace, sensor_name: d.sensorName, trigger_name: t.name });
      const why = deferred.map((x) => x.reason).join('; ');
      await handBack(dep, msg, ev, Math.max(...deferred.map((x) => x.delayMs)), why);
      return 'deferred';
    }
    if (d.errorOnFailedRound && outcomes.some((x) => x.kind === 'dead-lettered'))
      d.log.error({ dependency: dep.name, id: ev.id }, 'a trigger failed in this round (errorOnFailedRound)');
    await ack(msg);
    return 'settled';
  };

  const budget = new ByteBudget(d.maxInFlightBytes ?? DEFAULT_IN_FLIGHT_BYTES);
  const receive = async (dep: EventDependency, msg: JsMsg, release?: () => void): Promise<void> => {
    const bytes = msg.data.length;
    const wait = budget.acquire(bytes);
    if (wait) await wait;
    try {
      await receiveOne(dep, msg, release);
    } finally {
      budget.release(bytes);
    }
  };

  const receiveOne = async (dep: EventDependency, msg: JsMsg, release?: () => void): Promise<void> => {
    // After a long stretch of inline work (many events in one turn), let I/O in first.
    const busy = yieldIfBusy();
    if (busy) await busy;
    const k = tallyKey(dep, msg);
    const decoded = decodeBusEvent(msg.data, {
      seq: msg.seq,
      timestampMs: Number(msg.info.timestampNanos / 1_000_000),
      eventSourceName: dep.eventSourceName,
      eventName: dep.eventName,
    });
    if (!decoded.ok) {
      d.metrics.eventsReceived.inc({ ...labels(dep.name), result: 'undecodable' });
      await failEvent(
        msg,
        { dependency: dep.name, reason: 'invalid-event', message: decoded.message, raw: msg.data },
        'term',
      );
      tallies.delete(k);
      return;
    }
    const ev = decoded.event;
    const t = tallies.get(k);
    let handled = msg.info.deliveryCount - (t?.defers ?? 0) - (t?.before ?? 0);
    // Over the limit by this process's count: waits recorded by an earlier process still do not count.
    if (handled > d.maxDeliveries && d.deferrals && t?.before === undefined) {
      const before = await d.deferrals.get(k);
      tally(k).before = before;
      handled = msg.info.deliveryCount - before - (t?.defers ?? 0);
    }
    if (handled > d.maxDeliveries) {
      const why = t?.lastError ? `; last error: ${t.lastError}` : '';
      await failEvent(
        msg,
        {
          dependency: dep.name,
          event: ev,
          reason: 'max-deliveries',
          message: `delivered ${msg.info.deliveryCount} times, more than the Sensor handles (${d.maxDeliveries})${why}`,
        },
        'term',
      );
      tallies.delete(k);
      return;
    }
    const order = dep.orderingKey ? orderingValue(ev.data, dep.orderingKey) : undefined;
    if (order && !order.ok) {
      // The same event fails the same way every time: dead-letter it, never redeliver it.
      await failEvent(
        msg,
        { dependency: dep.name, event: ev, reason: 'ordering-key-error', message: order.message },
        'ack',
      );
      tallies.delete(k);
      return;
    }
    try {
      const how = order
        ? await serialized(chains, `${dep.name}\u0000${order.key}`, () => handle(dep, msg, ev, release))
        : await handle(dep, msg, ev, release);
      if (how === 'settled' && tallies.size) tallies.delete(k);
    } catch (err) {
      // No free sandbox worker (a flood of runaway programs, or stopping), or the bus could not
      // take a claim, a done mark or a partial match (no quorum, no leader, a foreign write to the
      // join state): not this event's fault, so the wait does not count against maxDeliveries.
      // Hand it back for later.
      const onBus = waitsOnBus(err);
      if (onBus || isTransientEvalError(err)) {
        if (onBus)
          d.log.warn(
            { dependency: dep.name, seq: msg.seq, err: d.dlq.redact((err as Error).message) },
            'the bus could not record this event now; redelivering',
          );
        d.metrics.eventsReceived.inc({ ...labels(dep.name), result: 'deferred' });
        const why = d.dlq.redact((err as Error).message);
        await handBack(dep, msg, ev, BUSY_RETRY_MS, why);
        return;
      }
      // Larger than the bus takes (a partial match holding this event): no delivery can succeed.
      if (toBusError(err).code === 'MessageTooLarge') {
        const message = `state about this event is larger than the bus accepts: ${(err as Error).message}`;
        await failEvent(msg, { dependency: dep.name, event: ev, reason: 'too-large', message }, 'ack');
        tallies.delete(k);
        return;
      }
      tally(k).lastError = d.dlq.redact((err as Error)?.message ?? String(err));
      throw err;
    }
  };
  return receive;
}
