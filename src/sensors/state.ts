// Where a Sensor's durable state lives on the bus, opened in one place: the processed-set and
// partial-match KV buckets, and one durable consumer per dependency (with the finite max_deliver of
// sensorMaxDeliver). When the controller takes over creating them, only this file changes.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SensorSpec } from '../api/sensor.ts';
import { ensureDependencyConsumer, sensorMaxDeliver } from '../bus/consumer.ts';
import { JsonState, openKv, ProcessedSet } from '../bus/kv.ts';
import { type BusRef, kvBucketName } from '../bus/subjects.ts';
import type { PartialMatch } from './join.ts';

export interface SensorState {
  processed: ProcessedSet;
  partial: JsonState<PartialMatch>;
}

/** Opens (creating if needed) the Sensor's KV buckets. */
export async function openSensorState(
  nc: NatsConnection,
  namespace: string,
  sensor: string,
  processedTtlMs: number,
): Promise<SensorState> {
  const processed = await ProcessedSet.open(nc, kvBucketName(namespace, sensor, 'processed'), processedTtlMs);
  const partial = new JsonState<PartialMatch>(
    await openKv(nc, kvBucketName(namespace, sensor, 'conditions')),
  );
  return { processed, partial };
}

export interface ConsumerOptions {
  bus: BusRef;
  sensor: string;
  spec: SensorSpec;
  ackWaitMs: number;
  maxAckPending: number;
  deliver: 'new' | 'all';
}

/** Ensures one durable consumer per dependency (before anyone consumes, so nothing is missed). */
export async function ensureSensorConsumers(
  jsm: JetStreamManager,
  o: ConsumerOptions,
): Promise<Array<{ dependency: string; durable: string }>> {
  const out: Array<{ dependency: string; durable: string }> = [];
  for (const dep of o.spec.dependencies ?? []) {
    const c = await ensureDependencyConsumer(jsm, {
      bus: o.bus,
      sensor: o.sensor,
      dependency: dep.name,
      eventSourceName: dep.eventSourceName,
      eventName: dep.eventName,
      ackWaitMs: o.ackWaitMs,
      maxAckPending: o.maxAckPending,
      maxDeliver: sensorMaxDeliver(o.spec),
      deliver: o.deliver,
    });
    out.push({ dependency: dep.name, durable: c.durable });
  }
  return out;
}
