// Settles one trigger for one set of events: the only place that decides between "done", "try
// again later" and "dead-letter". Order per attempt: processed-set check (a repeat is a no-op),
// circuit breaker (open → the message waits un-acked), strict rate limit (waiting here holds a
// handler slot, so pulling stops: backpressure, not buffering), the call itself, then the
// retryStrategy on transient failures. Exhausted or rejected → dead letter: the dlqTrigger is
// fired (once, by its own idempotency key) and a record always goes to the bus's DLQ stream.
import { createHash } from 'node:crypto';
import type { ProcessedSet } from '../bus/kv.ts';
import type { Publisher } from '../bus/publisher.ts';
import { type BusRef, dlqSubject } from '../bus/subjects.ts';
import type { RetryPlan } from '../resilience/backoff.ts';
import type { CircuitBreaker } from '../resilience/breaker.ts';
import type { RateLimiter } from '../resilience/rate-limit.ts';
import type { Claims } from './claims.ts';
import { encodeDeadLetter } from './dlq-record.ts';
import { storeDeadLetter } from './dlq-store.ts';
import type { Delivery, FastPath } from './fast-path.ts';
import { yieldIfBusy } from './inline-budget.ts';
import { claimsSeries, type SensorMetrics, triggerSeries } from './metrics.ts';
import { DestPathError, ParameterError, TemplateError } from './params/index.ts';
import { type DeadLetterReason, triggerFailureReason } from './reasons.ts';
import {
  type EventsByDependency,
  type TriggerContext,
  TriggerError,
  type TriggerRunner,
} from './triggers/trigger.ts';

export type Outcome =
  | { kind: 'done'; detail: string }
  | { kind: 'duplicate' }
  | { kind: 'dead-lettered'; error: string }
  | { kind: 'defer'; delayMs: number; reason: string };

/** A trigger (or a dlqTrigger) ready to fire: everything except the events. */
export interface PreparedTrigger {
  name: string;
  type: string;
  runner: TriggerRunner;
  /** Resolves the trigger-level parameters into the type's spec, for these events. */
  specFor(events: EventsByDependency): unknown;
  policy: unknown;
  plan: RetryPlan;
  rateLimiter?: RateLimiter;
  breaker?: CircuitBreaker;
  /** Longest a message may wait on an open breaker before it is dead-lettered (ms). */
  breakerMaxWaitMs: number;
  dlq?: PreparedTrigger;
}

export interface SettleEnv {
  namespace: string;
  sensorName: string;
  bus: BusRef;
  processed: ProcessedSet;
  /** Owner-and-lease claims on idempotency keys (in the processed-set). */
  claims: Claims;
  publisher: Publisher;
  metrics: SensorMetrics;
  /** Everything of TriggerContext that does not depend on the call. */
  context: Omit<
    TriggerContext,
    'idempotencyKey' | 'attempt' | 'events' | 'traceparent' | 'signal' | 'triggerName'
  >;
  /** Aborts when the Sensor stops: no new attempt, retry wait, rate-limit or breaker wait. */
  signal: AbortSignal;
  /**
   * Aborts trigger calls under way: only when a stop's drain time runs out (a call that started
   * is let finish, so its effect is recorded rather than cut and repeated by the next process).
   */
  callSignal: AbortSignal;
  /** Removes resolved secrets from error text before it is logged or stored (default: as is). */
  redact?: (text: string) => string;
  /** When a first delivery may skip the claim (absent: every call claims). */
  fastPath?: FastPath;
}

/** An outcome as one line of text (for DLQ records). */
export const outcomeText = (o: Outcome): string =>
  o.kind === 'done' ? o.detail || 'done' : o.kind === 'dead-lettered' ? `failed: ${o.error}` : o.kind;

/** Same events + same trigger → same key, across attempts, redeliveries, replicas and replays. */
export function idempotencyKey(
  namespace: string,
  sensor: string,
  trigger: string,
  events: EventsByDependency,
): string {
  const h = createHash('sha256');
  h.update(`${namespace}\u0000${sensor}\u0000${trigger}`);
  for (const dep of Object.keys(events).sort())
    h.update(`\u0000${dep}\u0000${events[dep]!.source}\u0000${events[dep]!.subject}\u0000${events[dep]!.id}`);
  return h.digest('hex').slice(0, 40);
}

export interface DeadLetterRecord {
  /** "trigger": a trigger execution failed for good; "event": the event failed before any trigger. */
  kind?: 'trigger' | 'event';
  namespace: string;
  sensor: string;
  /** The trigger; for an event record, "@" + the dependency. */
  trigger: string;
  /** For an event record: the dependency whose filter, transform or delivery failed. */
  dependency?: string;
  /** Why (see reasons.ts). */
  reason?: DeadLetterReason;
  triggerType: string;
  idempotencyKey: string;
  events: EventsByDependency;
  attempts: number;
  error: { code: string; message: string };
  firstAttemptAt: string;
  deadLetteredAt: string;
  dlqTrigger?: { name: string; outcome: string };
  /** For an event record: the dlqTrigger of each trigger waiting on the dependency. */
  dlqTriggers?: Array<{ name: string; outcome: string }>;
  /** For an event record whose message could not be decoded: its first bytes, base64. */
  raw?: string;
  /**
   * Dependencies whose event data was cut to fit the record in one bus message (see
   * dlq-record.ts); such a record is not replayed.
   */
  truncated?: string[];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Errors from building the request (a parameter the event cannot supply, a bad template) will
 * not go away on retry: they are a rejection. Anything else unknown is treated as transient.
 */
const asTriggerError = (err: unknown): TriggerError => {
  if (err instanceof TriggerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ParameterError || err instanceof TemplateError || err instanceof DestPathError) {
    return new TriggerError('Rejected', message, { cause: err });
  }
  return new TriggerError('Transient', message, { cause: err });
};

export interface SettleOptions {
  /** Idempotency key to use instead of the one derived from the events (dlqTrigger, replay). */
  key?: string;
  /**
   * A replay of a dead letter: on failure, report it and leave the existing record alone (no new
   * record, no second dlqTrigger).
   */
  replay?: boolean;
  /** Called once the call succeeded, before its done mark is written (the caller's work is done). */
  onEffect?: () => void;
  /** The message the events come from (one dependency): lets a first delivery skip the claim. */
  delivery?: Delivery;
}

/**
 * Runs `t` for `events`. `waitingSinceMs` is when these events first became ready (e.g. the
 * message's stream time), so breaker waits are bounded across redeliveries.
 */
export async function settle(
  env: SettleEnv,
  t: PreparedTrigger,
  events: EventsByDependency,
  waitingSinceMs: number,
  opts: SettleOptions = {},
): Promise<Outcome> {
  const key = opts.key ?? idempotencyKey(env.namespace, env.sensorName, t.name, events);
  const labels = { namespace: env.namespace, sensor_name: env.sensorName, trigger_name: t.name };
  const fast = env.fastPath;
  // The same key runs here without a claim (a duplicate in the same pull): wait for it.
  if (fast?.busy(key)) return { kind: 'defer', delayMs: 1000, reason: 'running in this process' };
  if (opts.delivery?.fresh && fast?.take(key))
    return settleUnclaimed(env, t, events, waitingSinceMs, key, opts, opts.delivery);
  claimSeries(env, 'claimed').inc();
  const claim = await env.claims.claim(key);
  if (claim.state === 'done') {
    env.metrics.duplicates.inc(labels);
    return { kind: 'duplicate' };
  }
  // Someone else (a replica, a `sluice dlq replay`) is running this effect now: wait for it.
  if (claim.state === 'busy')
    return { kind: 'defer', delayMs: claim.retryInMs, reason: `claimed by ${claim.owner}` };
  const lease = env.claims.keepAlive(key, claim);
  let outcome: Outcome | undefined;
  try {
    outcome = await attempts(env, t, events, waitingSinceMs, key, opts);
    return outcome;
  } finally {
    // Handed back to wait (open breaker): the effect did not run, let the next delivery claim it.
    if (outcome?.kind === 'defer') await lease.release();
    else lease.stop();
  }
}

/** The bound `sluice_sensor_claims_total` series of `path` for this Sensor. */
const claimSeries = (env: SettleEnv, path: 'claimed' | 'skipped' | 'late') =>
  claimsSeries(env.metrics, env.namespace, env.sensorName, path);

/**
 * The fast path (fast-path.ts): the call runs without a claim; one still running at the message's
 * first heartbeat writes its claim then (renewed like any other), so a redelivery after ack_wait
 * finds it. The order stays call → done mark stored → ack.
 */
async function settleUnclaimed(
  env: SettleEnv,
  t: PreparedTrigger,
  events: EventsByDependency,
  waitingSinceMs: number,
  key: string,
  opts: SettleOptions,
  delivery: Delivery,
): Promise<Outcome> {
  claimSeries(env, 'skipped').inc();
  let lease: ReturnType<Claims['keepAlive']> | undefined;
  let late: Promise<void> | undefined;
  const claimLate = () => {
    late ??= env.claims.claim(key).then(
      (c) => {
        claimSeries(env, 'late').inc();
        if (c.state === 'new' || c.state === 'mine') lease = env.claims.keepAlive(key, c);
        else
          env.context.log.warn(
            { trigger: t.name, idempotencyKey: key, found: c.state },
            'a slow call found its key claimed or done by another writer (a replay?) when claiming late',
          );
      },
      (err: unknown) =>
        env.context.log.warn(
          { trigger: t.name, idempotencyKey: key, err: (err as Error).message },
          'could not claim a slow call late; a redelivery after ack_wait may call again (same idempotency key)',
        ),
    );
  };
  delivery.onBeat(claimLate);
  // This process may stop being the sole consumer (a lost Lease) while the call runs: claim then.
  env.fastPath?.onLeadLost(key, claimLate);
  let outcome: Outcome | undefined;
  try {
    outcome = await attempts(env, t, events, waitingSinceMs, key, opts);
    return outcome;
  } finally {
    env.fastPath?.finish(key);
    await late;
    if (outcome?.kind === 'defer') await lease?.release();
    else lease?.stop();
  }
}

type Labels = { namespace: string; sensor_name: string; trigger_name: string };
type Permit = ReturnType<CircuitBreaker['tryAcquire']>;

/**
 * The breaker's word on the next attempt: a permit (or none without a breaker), a wait (defer,
 * while the events have waited less than the breaker's maximum), or giving up with `error`.
 */
function breakerGate(
  t: PreparedTrigger,
  waitingSinceMs: number,
  last: TriggerError | undefined,
): { permit?: Permit } | { defer: Outcome } | { error: TriggerError } {
  if (!t.breaker) return {};
  const permit = t.breaker.tryAcquire();
  if (permit.allowed) return { permit };
  if (Date.now() - waitingSinceMs < t.breakerMaxWaitMs)
    return { defer: { kind: 'defer', delayMs: permit.retryInMs, reason: 'circuit breaker open' } };
  return {
    error: new TriggerError(
      'Transient',
      `circuit breaker open for longer than the maximum wait; last error: ${last?.message ?? 'none in this delivery'}`,
    ),
  };
}

/** Waits for the trigger's rate limit (counting the wait) and for a turn with room for work. */
async function waitForTurn(env: SettleEnv, t: PreparedTrigger, labels: Labels): Promise<void> {
  if (t.rateLimiter) {
    const before = performance.now();
    await t.rateLimiter.acquire(env.signal);
    const waited = performance.now() - before;
    if (waited > 1) env.metrics.rateLimitWait.inc(labels, waited / 1000);
  }
  const busy = yieldIfBusy();
  if (busy) await busy;
}

/** One call of the trigger; on success its metrics, `onEffect`, then its done mark stored. */
async function callOnce(
  env: SettleEnv,
  t: PreparedTrigger,
  events: EventsByDependency,
  key: string,
  attempt: number,
  opts: SettleOptions,
  permit: Permit | undefined,
): Promise<Outcome> {
  const started = performance.now();
  const traceparent = Object.values(events)[0]?.traceparent;
  const result = await t.runner.fire(
    t.specFor(events),
    {
      ...env.context,
      triggerName: t.name,
      idempotencyKey: key,
      attempt,
      events,
      signal: env.callSignal,
      ...(traceparent ? { traceparent } : {}),
    },
    t.policy,
  );
  permit?.allowed && permit.release(true);
  const series = triggerSeries(env.metrics, env.namespace, env.sensorName, t.name);
  series.duration.observe(performance.now() - started);
  series.triggered.inc();
  for (const ev of Object.values(events)) {
    const at = Date.parse(ev.time);
    if (!Number.isNaN(at)) series.latency.observe(Math.max(0, Date.now() - at) / 1000);
  }
  opts.onEffect?.();
  await recordDone(env, key, result.detail || 'done');
  return { kind: 'done', detail: result.detail };
}

/** A failed call: the error (redacted, bounded), counted and logged; the breaker told. */
function attemptFailed(
  env: SettleEnv,
  t: PreparedTrigger,
  err: unknown,
  p: { attempt: number; key: string; labels: Labels; startedMs: number; permit: Permit | undefined },
): TriggerError {
  let last = asTriggerError(err);
  const clean = boundedMessage(env.redact ? env.redact(last.message) : last.message);
  if (clean !== last.message) last = redacted(last, clean);
  p.permit?.allowed && p.permit.release(false);
  env.metrics.duration.observe(p.labels, performance.now() - p.startedMs);
  env.metrics.failed.inc(p.labels);
  const fields = { trigger: t.name, attempt: p.attempt, of: t.plan.attempts, code: last.code };
  env.context.log.warn({ ...fields, err: last.message, idempotencyKey: p.key }, 'trigger attempt failed');
  return last;
}

/** The attempts of one claimed execution, then the dead letter when they failed for good. */
async function attempts(
  env: SettleEnv,
  t: PreparedTrigger,
  events: EventsByDependency,
  waitingSinceMs: number,
  key: string,
  opts: SettleOptions,
): Promise<Outcome> {
  const labels = { namespace: env.namespace, sensor_name: env.sensorName, trigger_name: t.name };
  const firstAttemptAt = new Date();
  let last: TriggerError | undefined;
  let attempt = 0;
  for (attempt = 1; attempt <= t.plan.attempts; attempt++) {
    // Stopping starts no attempt, not even a first one (a message queued behind the same
    // orderingKey, a later firing of a join, a dlqTrigger): the message comes back un-acked.
    env.signal.throwIfAborted();
    const gate = breakerGate(t, waitingSinceMs, last);
    if ('defer' in gate) return gate.defer;
    if ('error' in gate) {
      last = gate.error;
      break;
    }
    await waitForTurn(env, t, labels);
    const startedMs = performance.now();
    try {
      return await callOnce(env, t, events, key, attempt, opts, gate.permit);
    } catch (err) {
      if (env.signal.aborted || err instanceof EffectNotRecorded) throw err;
      last = attemptFailed(env, t, err, { attempt, key, labels, startedMs, permit: gate.permit });
      if (!last.retryable || attempt >= t.plan.attempts) break;
      // The breaker may have opened on this failure: wait un-acked rather than use up attempts.
      if (t.breaker && t.breaker.state === 'open' && Date.now() - waitingSinceMs < t.breakerMaxWaitMs) {
        return {
          kind: 'defer',
          delayMs: t.breakerMaxWaitMs > 0 ? 1000 : 0,
          reason: 'circuit breaker opened',
        };
      }
      env.metrics.retries.inc(labels);
      await sleep(Math.max(t.plan.delayMs(attempt), last.retryAfterMs ?? 0), env.signal);
    }
  }
  return failedForGood(env, t, events, key, opts, { last, attempt, labels, firstAttemptAt });
}

/** Every attempt failed (or none could be made): the key forgotten, then the dead letter. */
async function failedForGood(
  env: SettleEnv,
  t: PreparedTrigger,
  events: EventsByDependency,
  key: string,
  opts: SettleOptions,
  p: { last: TriggerError | undefined; attempt: number; labels: Labels; firstAttemptAt: Date },
): Promise<Outcome> {
  if (p.last?.retryable && t.plan.attempts > 1 && p.attempt >= t.plan.attempts)
    env.metrics.retriesFailed.inc(p.labels);
  const error = p.last ?? new TriggerError('Transient', 'no attempt was made');
  // Not done: a replay of the dead letter must be able to run it.
  await env.processed.forget(key);
  if (opts.replay) return { kind: 'dead-lettered', error: error.message };
  await deadLetter(env, t, events, key, error, Math.min(p.attempt, t.plan.attempts), p.firstAttemptAt);
  return { kind: 'dead-lettered', error: error.message };
}

/**
 * The effect happened but the bus did not record it (e.g. it lost its quorum). Not a failure of
 * the trigger: retrying or dead-lettering it would report an effect that took place as failed.
 * The message is handed back; its redelivery runs the effect again under the same idempotency key,
 * as after a crash between the call and the record.
 */
export class EffectNotRecorded extends Error {
  constructor(key: string, cause: unknown) {
    super(`the effect of ${key} happened but could not be recorded on the bus: ${String(cause)}`, { cause });
    this.name = 'EffectNotRecorded';
  }
}

/**
 * Marks `key` done, asking again (three tries, 1 s apart) while the bus is unavailable. A stop
 * does not cut this short: the effect happened, so its record gets the drain time the call had
 * (callSignal) rather than leave the next process to call again.
 */
async function recordDone(env: SettleEnv, key: string, detail: string): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      return await env.processed.markDone(key, detail);
    } catch (err) {
      if (i >= 3 || env.callSignal.aborted) throw new EffectNotRecorded(key, err);
      await sleep(1000, env.callSignal).catch(() => {
        throw new EffectNotRecorded(key, err);
      });
    }
  }
}

/** Longest error message kept (logged, stored in a DLQ record), in characters. */
export const MAX_ERROR_MESSAGE = 2048;

/** `m` cut to MAX_ERROR_MESSAGE characters. */
const boundedMessage = (m: string): string =>
  m.length <= MAX_ERROR_MESSAGE
    ? m
    : `${m.slice(0, MAX_ERROR_MESSAGE)}… (${m.length - MAX_ERROR_MESSAGE} more characters)`;

/** The same error with a redacted message (code, retryability and cause kept). */
function redacted(e: TriggerError, message: string): TriggerError {
  return new TriggerError(e.code, message, {
    ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
    ...(e.cause !== undefined ? { cause: e.cause } : {}),
  });
}

/**
 * Dead-letters trigger `t` for `events` without running it: fires its dlqTrigger (once, by
 * `<key>:dlq`) and stores a `kind: trigger` record with `reason`. For failures found before the
 * call (e.g. the event cannot wait in the trigger's partial match); `sluice dlq replay` keeps
 * such records (the trigger was never ready to run).
 */
export async function rejectTrigger(
  env: SettleEnv,
  t: PreparedTrigger,
  events: EventsByDependency,
  reason: DeadLetterReason,
  message: string,
): Promise<Outcome> {
  const key = idempotencyKey(env.namespace, env.sensorName, t.name, events);
  const error = new TriggerError('Rejected', message);
  await deadLetter(env, t, events, key, error, 0, new Date(), reason);
  return { kind: 'dead-lettered', error: message };
}

async function deadLetter(
  env: SettleEnv,
  t: PreparedTrigger,
  events: EventsByDependency,
  key: string,
  error: TriggerError,
  attempts: number,
  firstAttemptAt: Date,
  fixedReason?: DeadLetterReason,
): Promise<void> {
  const labels = { namespace: env.namespace, sensor_name: env.sensorName, trigger_name: t.name };
  let dlqTrigger: DeadLetterRecord['dlqTrigger'];
  if (t.dlq) {
    // The dead-letter trigger gets the same events; its own key keeps it from firing twice.
    const o = await settle(env, { ...t.dlq, dlq: undefined }, events, Date.now(), { key: `${key}:dlq` });
    dlqTrigger = { name: t.dlq.name, outcome: outcomeText(o) };
  }
  const reason = fixedReason ?? triggerFailureReason(error);
  const record: DeadLetterRecord = {
    kind: 'trigger',
    namespace: env.namespace,
    sensor: env.sensorName,
    trigger: t.name,
    reason,
    triggerType: t.type,
    idempotencyKey: key,
    events,
    attempts,
    error: { code: error.code, message: error.message },
    firstAttemptAt: firstAttemptAt.toISOString(),
    deadLetteredAt: new Date().toISOString(),
    ...(dlqTrigger ? { dlqTrigger } : {}),
  };
  await storeDeadLetter(
    { ...env, log: env.context.log },
    dlqSubject(env.bus, env.sensorName, t.name),
    encodeDeadLetter(record, env.publisher.maxPayload),
    `dlq/${key}`,
  );
  env.metrics.deadLettered.inc({ ...labels, reason });
  env.context.log.error(
    {
      trigger: t.name,
      idempotencyKey: key,
      attempts,
      reason,
      code: error.code,
      err: error.message,
      dlqTrigger,
    },
    'trigger dead-lettered',
  );
}
