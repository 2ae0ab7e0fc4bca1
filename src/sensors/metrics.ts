// Sensor metrics: upstream's names for trigger outcomes, plus what an operator needs to see a
// Sensor falling behind (pending, oldest unacked age), failing (DLQ depth, breaker state) or being
// held back (rate-limit waits), and the end-to-end latency from event time to trigger success.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { adopt } from '../observability/metrics.ts';

const T = ['namespace', 'sensor_name', 'trigger_name'] as const;
const D = ['namespace', 'sensor_name', 'dependency'] as const;

export function sensorMetrics(registry: Registry) {
  return {
    triggered: adopt(
      registry,
      new Counter({
        name: 'argo_events_action_triggered_total',
        help: 'Trigger calls that succeeded.',
        labelNames: T,
        registers: [],
      }),
    ),
    failed: adopt(
      registry,
      new Counter({
        name: 'argo_events_action_failed_total',
        help: 'Trigger attempts that failed (each attempt counts).',
        labelNames: T,
        registers: [],
      }),
    ),
    retriesFailed: adopt(
      registry,
      new Counter({
        name: 'argo_events_action_retries_failed_total',
        help: 'Trigger executions that failed after using up every retry.',
        labelNames: T,
        registers: [],
      }),
    ),
    duration: adopt(
      registry,
      new Histogram({
        name: 'argo_events_action_duration_milliseconds',
        help: 'Duration of one trigger attempt.',
        labelNames: T,
        buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000],
        registers: [],
      }),
    ),
    retries: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_trigger_retries_total',
        help: 'Retries made after a transient trigger failure.',
        labelNames: T,
        registers: [],
      }),
    ),
    deadLettered: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_dead_letters_total',
        help: 'Trigger executions dead-lettered (record written to the DLQ stream), by reason.',
        labelNames: [...T, 'reason'],
        registers: [],
      }),
    ),
    partialReplaced: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_partial_events_replaced_total',
        help: 'Events waiting in a partial condition match replaced by a newer event of the same dependency (latest wins, as upstream): the older one is not used by any firing.',
        labelNames: T,
        registers: [],
      }),
    ),
    consumerMissing: adopt(
      registry,
      new Gauge({
        name: 'sluice_sensor_consumer_missing',
        help: "1 while a dependency's JetStream consumer does not exist (its events are not kept for the Sensor); the Sensor is not ready meanwhile.",
        labelNames: D,
        registers: [],
      }),
    ),
    partialDiscarded: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_partial_events_discarded_total',
        help: 'Events of a partial condition match dropped unused: older than the last conditionsReset, or recorded before the trigger or its dependencies changed.',
        labelNames: T,
        registers: [],
      }),
    ),
    deadLetterStoreFailures: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_dead_letter_store_failures_total',
        help: 'Dead-letter records the bus refused to store (DLQ stream missing or full, bus down); each is retried until stored while its message is kept.',
        labelNames: ['namespace', 'sensor_name'],
        registers: [],
      }),
    ),
    eventsDeadLettered: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_events_dead_lettered_total',
        help: 'Events dead-lettered before any trigger ran (invalid envelope, filter error, transform failure, program limits, too many deliveries), by reason.',
        labelNames: [...D, 'reason'],
        registers: [],
      }),
    ),
    duplicates: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_duplicates_skipped_total',
        help: 'Trigger executions skipped because the processed-set already had their idempotency key.',
        labelNames: T,
        registers: [],
      }),
    ),
    rateLimitWait: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_rate_limit_wait_seconds_total',
        help: 'Time trigger starts spent waiting for the rate limit.',
        labelNames: T,
        registers: [],
      }),
    ),
    breakerState: adopt(
      registry,
      new Gauge({
        name: 'sluice_sensor_circuit_breaker_state',
        help: 'Circuit breaker state per trigger: 0 closed, 1 half-open, 2 open.',
        labelNames: T,
        registers: [],
      }),
    ),
    deferred: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_messages_deferred_total',
        help: 'Messages handed back un-acked to wait (open circuit breaker).',
        labelNames: T,
        registers: [],
      }),
    ),
    latency: adopt(
      registry,
      new Histogram({
        name: 'sluice_sensor_end_to_end_latency_seconds',
        help: 'From the event time (set at the EventSource) to trigger success, in seconds.',
        labelNames: T,
        buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
        registers: [],
      }),
    ),
    eventsReceived: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_events_total',
        help: 'Events received per dependency, by result of the dependency filters.',
        labelNames: [...D, 'result'],
        registers: [],
      }),
    ),
    pending: adopt(
      registry,
      new Gauge({
        name: 'sluice_sensor_consumer_pending',
        help: 'Events in the stream not yet delivered to this dependency consumer.',
        labelNames: D,
        registers: [],
      }),
    ),
    ackPending: adopt(
      registry,
      new Gauge({
        name: 'sluice_sensor_consumer_ack_pending',
        help: 'Events delivered to this dependency consumer and not yet settled.',
        labelNames: D,
        registers: [],
      }),
    ),
    oldestUnackedAge: adopt(
      registry,
      new Gauge({
        name: 'sluice_sensor_oldest_unacked_age_seconds',
        help: 'Age of the oldest event of this dependency that is not settled yet (0 when none).',
        labelNames: D,
        registers: [],
      }),
    ),
    claims: adopt(
      registry,
      new Counter({
        name: 'sluice_sensor_claims_total',
        help: 'Trigger calls by how their idempotency key was claimed: "claimed" before the call, "skipped" (a first delivery of a new key), "late" (skipped, then written at the first heartbeat of a slow call).',
        labelNames: ['namespace', 'sensor_name', 'path'],
        registers: [],
      }),
    ),
    doneIndexReady: adopt(
      registry,
      new Gauge({
        name: 'sluice_sensor_done_index_ready',
        help: '1 once the done-key index has read the processed bucket (first deliveries may skip the claim), else 0.',
        labelNames: ['namespace', 'sensor_name'],
        registers: [],
      }),
    ),
    dlqDepth: adopt(
      registry,
      new Gauge({
        name: 'sluice_sensor_dlq_depth',
        help: 'Dead letters of this Sensor in the DLQ stream.',
        labelNames: ['namespace', 'sensor_name'],
        registers: [],
      }),
    ),
  };
}

export type SensorMetrics = ReturnType<typeof sensorMetrics>;

/**
 * The per-event metric series of one trigger, their label objects made once (prom-client 15 still
 * hashes the labels on every call; this saves building and spreading them per event).
 */
export interface TriggerSeries {
  triggered: { inc(v?: number): void };
  duration: { observe(v: number): void };
  latency: { observe(v: number): void };
}

const bound = new WeakMap<SensorMetrics, Map<string, TriggerSeries>>();

/** The bound series of trigger `trigger` of Sensor `namespace/sensor` (made on first use). */
export function triggerSeries(
  m: SensorMetrics,
  namespace: string,
  sensor: string,
  trigger: string,
): TriggerSeries {
  let byKey = bound.get(m);
  if (!byKey) {
    byKey = new Map();
    bound.set(m, byKey);
  }
  const key = `${namespace}\u0000${sensor}\u0000${trigger}`;
  let s = byKey.get(key);
  if (!s) {
    const labels = { namespace, sensor_name: sensor, trigger_name: trigger };
    s = {
      triggered: m.triggered.labels(labels),
      duration: m.duration.labels(labels),
      latency: m.latency.labels(labels),
    };
    byKey.set(key, s);
  }
  return s;
}

/** The bound `sluice_sensor_events_total` series of one dependency and result. */
export function eventSeries(
  m: SensorMetrics,
  namespace: string,
  sensor: string,
  dependency: string,
  result: string,
): { inc(v?: number): void } {
  return seriesCache(m, `${namespace}\u0000${sensor}\u0000${dependency}\u0000${result}`, () =>
    m.eventsReceived.labels({ namespace, sensor_name: sensor, dependency, result }),
  );
}

/** The bound `sluice_sensor_claims_total` series of one Sensor and claim path. */
export function claimsSeries(
  m: SensorMetrics,
  namespace: string,
  sensor: string,
  path: 'claimed' | 'skipped' | 'late',
): { inc(v?: number): void } {
  return seriesCache(m, `claims\u0000${namespace}\u0000${sensor}\u0000${path}`, () =>
    m.claims.labels({ namespace, sensor_name: sensor, path }),
  );
}

const other = new WeakMap<SensorMetrics, Map<string, { inc(v?: number): void }>>();
function seriesCache(
  m: SensorMetrics,
  key: string,
  make: () => { inc(v?: number): void },
): { inc(v?: number): void } {
  let byKey = other.get(m);
  if (!byKey) {
    byKey = new Map();
    other.set(m, byKey);
  }
  let s = byKey.get(key);
  if (!s) {
    s = make();
    byKey.set(key, s);
  }
  return s;
}
