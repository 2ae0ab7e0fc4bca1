// Dead-letters an event that failed before any trigger ran: its envelope was invalid, a filter
// could not be evaluated, its transform failed, a program hit its limits, or it was delivered too
// many times. The dlqTrigger of every trigger waiting on the dependency is fired (once each, by its
// own idempotency key) with the original event, and one record always goes to the DLQ stream
// (deduplicated by the message's stream sequence, so a redelivery does not write a second one).
// The caller acks (or terms) the message only after this returned.
import type { Publisher } from '../bus/publisher.ts';
import { type BusRef, dlqSubject } from '../bus/subjects.ts';
import type { CloudEvent } from '../eventsources/envelope.ts';
import type { Logger } from '../observability/logger.ts';
import { encodeDeadLetter } from './dlq-record.ts';
import { storeDeadLetter } from './dlq-store.ts';
import type { SensorMetrics } from './metrics.ts';
import type { DeadLetterReason } from './reasons.ts';
import {
  type DeadLetterRecord,
  MAX_ERROR_MESSAGE,
  outcomeText,
  type PreparedTrigger,
  type SettleEnv,
  settle,
} from './settle.ts';
import type { EventsByDependency } from './triggers/trigger.ts';

/** Bytes of an undecodable message kept in its DLQ record. */
export const MAX_RAW_BYTES = 4096;

export interface EventDeadLetterEnv {
  namespace: string;
  sensorName: string;
  bus: BusRef;
  publisher: Publisher;
  metrics: SensorMetrics;
  log: Logger;
  /** Triggers (with their dlqTrigger) by the dependencies they wait on. */
  triggers: ReadonlyArray<PreparedTrigger & { dependencies: ReadonlySet<string> }>;
  /** The settle environment for these events (binds parameters to them). */
  envFor(events: EventsByDependency): SettleEnv;
  redact(text: string): string;
  /** Aborted when the Sensor stops. */
  signal: AbortSignal;
}

export interface EventFailure {
  dependency: string;
  reason: DeadLetterReason;
  message: string;
  /** The decoded event, when there is one. */
  event?: CloudEvent;
  /** The message bytes, for an event that could not be decoded. */
  raw?: Uint8Array;
  /** Stream sequence and delivery count of the message. */
  seq: number;
  deliveries: number;
}

export async function deadLetterEvent(env: EventDeadLetterEnv, f: EventFailure): Promise<void> {
  const message = env.redact(f.message).slice(0, MAX_ERROR_MESSAGE);
  const key = `event/${env.namespace}/${env.sensorName}/${f.dependency}/${f.seq}`;
  const events: EventsByDependency = f.event ? { [f.dependency]: f.event } : {};
  const fired: Array<{ name: string; outcome: string }> = [];
  if (f.event) {
    for (const t of env.triggers) {
      if (!t.dlq || !t.dependencies.has(f.dependency)) continue;
      const o = await settle(env.envFor(events), { ...t.dlq, dlq: undefined }, events, Date.now(), {
        key: `${key}/${t.name}:dlq`,
      });
      fired.push({ name: t.dlq.name, outcome: outcomeText(o) });
    }
  }
  const now = new Date().toISOString();
  const record: DeadLetterRecord = {
    kind: 'event',
    namespace: env.namespace,
    sensor: env.sensorName,
    trigger: `@${f.dependency}`,
    dependency: f.dependency,
    reason: f.reason,
    triggerType: '',
    idempotencyKey: key,
    events,
    attempts: f.deliveries,
    error: { code: f.reason, message },
    firstAttemptAt: now,
    deadLetteredAt: now,
    ...(fired.length ? { dlqTrigger: fired[0]!, dlqTriggers: fired } : {}),
    ...(f.raw ? { raw: Buffer.from(f.raw.subarray(0, MAX_RAW_BYTES)).toString('base64') } : {}),
  };
  await storeDeadLetter(
    env,
    dlqSubject(env.bus, env.sensorName, `@${f.dependency}`),
    encodeDeadLetter(record, env.publisher.maxPayload),
    `dlq/${key}`,
  );
  env.metrics.eventsDeadLettered.inc({
    namespace: env.namespace,
    sensor_name: env.sensorName,
    dependency: f.dependency,
    reason: f.reason,
  });
  env.log.error(
    {
      dependency: f.dependency,
      id: f.event?.id,
      seq: f.seq,
      deliveries: f.deliveries,
      reason: f.reason,
      err: message,
      ...(fired.length ? { dlqTriggers: fired } : {}),
    },
    'event dead-lettered',
  );
}
