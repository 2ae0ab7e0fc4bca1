// A Sensor's state on the bus, opened once at start: its durable consumers (one per dependency)
// and its two KV buckets, wrapped for the data path. The processed set's writes are grouped into
// atomic batches (kv-group.ts); the partial matches are held in memory and written behind
// (join-store.ts).
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { sensorMaxDeliver } from '../bus/consumer.ts';
import { JsonState, ProcessedSet } from '../bus/kv.ts';
import { atomicBatches, KvGroupCommit } from '../bus/kv-group.ts';
import { bindSensorState, openSensorState, sensorBuckets } from '../bus/sensor-state.ts';
import type { Logger } from '../observability/logger.ts';
import { DoneIndex, indexCapacity } from './done-index.ts';
import type { PartialMatch } from './join.ts';
import { JoinStore } from './join-store.ts';
import type { SensorRuntimeOptions } from './options.ts';

/** How long the processed set remembers an idempotency key by default (7 days, in ms). */
export const DEFAULT_PROCESSED_TTL = 7 * 24 * 3600 * 1000;

/** The bus state of a running Sensor. `consumers[i]` is the durable of `spec.dependencies[i]`. */
export interface SensorState {
  consumers: string[];
  processed: ProcessedSet;
  joins: JoinStore;
  /** Keys that may be in the processed set (told every write of `processed`; not started yet). */
  index: DoneIndex;
}

/**
 * Binds to the consumers and buckets the controller provisioned (`o.provisioned`, waiting until
 * they exist), or creates them (`sluice dev`, tests). Consumers exist before anyone consumes, so
 * events published meanwhile are kept. Throws the bus error when the bus cannot be reached.
 */
export async function openState(
  o: SensorRuntimeOptions,
  jsm: JetStreamManager,
  nc: NatsConnection,
  ackWaitMs: number,
  log: Logger,
): Promise<SensorState> {
  const state = await (o.provisioned ? bindSensorState : openSensorState)(
    jsm,
    nc,
    {
      bus: o.bus,
      sensor: o.name,
      dependencies: o.spec.dependencies ?? [],
      tuning: {
        ackWaitMs,
        maxAckPending: Math.max(1000, (o.concurrency ?? 64) * 4),
        maxDeliver: sensorMaxDeliver(o.spec),
        deliver: o.deliver ?? 'new',
      },
      ...(o.replicas ? { replicas: o.replicas } : {}),
      processedTtlMs: o.processedTtlMs ?? DEFAULT_PROCESSED_TTL,
    },
    { onWait: (what) => log.info({ waitingFor: what }, 'waiting for the controller to provision bus state') },
  );
  // Claims and done marks of the events handled in one turn go to the bus as one batch.
  const processed = new ProcessedSet(
    state.processed,
    new KvGroupCommit(nc, state.processed, { atomic: await atomicBatches(nc, state.processed) }),
  );
  const bucket = sensorBuckets(o.bus.namespace, o.name).processed;
  const maxBytes = (await state.processed.status()).streamInfo.config.max_bytes;
  const index = new DoneIndex(nc, bucket, indexCapacity(maxBytes), log);
  processed.onWrite = (k) => index.add(k);
  return {
    consumers: state.consumers,
    processed,
    joins: new JoinStore(new JsonState<PartialMatch>(state.conditions)),
    index,
  };
}
