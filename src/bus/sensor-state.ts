// Everything a Sensor keeps on the bus, in one place: a durable consumer per dependency and two
// KV buckets (the processed set that keeps an effect from repeating, and partial condition
// matches). The controller provisions them before the Sensor runs and deletes them when the
// Sensor is deleted (finalizer); the Sensor only binds to them. Without a controller (`sluice dev`,
// tests) the Sensor provisions them itself through the same functions, so there is one source for
// their configuration.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type ConsumerTuning,
  consumerOwner,
  type DependencyConsumerSpec,
  deleteConsumers,
  deleteSensorConsumers,
  dependencyConsumerSettings,
  ensureDependencyConsumer,
} from './consumer.ts';
import { isNotFound } from './errors.ts';
import { ensureKv } from './kv.ts';
import { DEFAULT_KV_MAX_BYTES } from './placement.ts';
import { deleteBuckets } from './source-state.ts';
import { type BusRef, eventStreamName, kvBucketName } from './subjects.ts';

/** How long the processed set remembers an idempotency key (default 7 days). */
export const DEFAULT_PROCESSED_TTL_MS = 7 * 24 * 3600 * 1000;

/** Consumer settings of every Sensor dependency unless told otherwise. */
export const DEFAULT_SENSOR_CONSUMER: Required<Pick<ConsumerTuning, 'ackWaitMs' | 'maxAckPending'>> = {
  ackWaitMs: 30_000,
  maxAckPending: 1000,
};

export interface SensorDependencyRef {
  name: string;
  eventSourceName: string;
  eventName: string;
}

export interface SensorStateSpec {
  bus: BusRef;
  sensor: string;
  dependencies: readonly SensorDependencyRef[];
  /** Consumer tuning (defaults: DEFAULT_SENSOR_CONSUMER, deliver "new"). */
  tuning?: ConsumerTuning;
  /** Copies of each KV entry (from busReplicas). */
  replicas?: number;
  processedTtlMs?: number;
  /** Most bytes of each of its KV buckets (busLimits.kvMaxBytes; default 16MB). */
  kvMaxBytes?: number;
}

/** The consumer specs of a Sensor's dependencies (pure): one source for controller and Sensor. */
export function sensorConsumerSpecs(s: SensorStateSpec): DependencyConsumerSpec[] {
  return s.dependencies.map((d) => ({
    ...DEFAULT_SENSOR_CONSUMER,
    deliver: 'new' as const,
    ...s.tuning,
    bus: s.bus,
    sensor: s.sensor,
    dependency: d.name,
    eventSourceName: d.eventSourceName,
    eventName: d.eventName,
  }));
}

/** The KV buckets of a Sensor (names are per namespace and Sensor). */
export function sensorBuckets(namespace: string, sensor: string): { processed: string; conditions: string } {
  return {
    processed: kvBucketName(namespace, sensor, 'processed'),
    conditions: kvBucketName(namespace, sensor, 'conditions'),
  };
}

/**
 * Deletes consumers on the bus's event stream that belong to a Sensor not in `live` (orphans of
 * Sensors deleted before the controller owned their state): under interest retention they would
 * keep every event they match. Consumers sluice did not make are left alone.
 */
export async function deleteOrphanConsumers(
  jsm: JetStreamManager,
  bus: BusRef,
  live: ReadonlySet<string>,
): Promise<string[]> {
  try {
    return await deleteConsumers(
      jsm,
      eventStreamName(bus),
      (_name, ci) => {
        const owner = consumerOwner(ci);
        return owner !== undefined && !live.has(owner.sensor);
      },
      new Set(),
    );
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** Durable names of a Sensor's dependency consumers (pure). */
export function sensorConsumerNames(s: SensorStateSpec): string[] {
  return sensorConsumerSpecs(s).map((c) => dependencyConsumerSettings(c).durable);
}

/**
 * Most consumers a Sensor's processed bucket takes. Its only consumers are the done-key index's
 * followers (kv-follow.ts), one per running Sensor process (a killed one's lingers 5 minutes); a
 * Sensor's credential may create consumers there (the follower's permission cannot pin their kind
 * or number), so without a cap it could make durable ones without end.
 */
export const PROCESSED_MAX_CONSUMERS = 64;

/**
 * Creates (or brings in line) a Sensor's consumers and KV buckets. Returns what exists now. The
 * processed set is a bounded cache (full: its oldest keys go first, like an earlier TTL); the
 * partial matches refuse writes when full (the event is retried, never silently forgotten).
 */
export async function provisionSensorState(
  jsm: JetStreamManager,
  _nc: NatsConnection,
  s: SensorStateSpec,
): Promise<{ consumers: string[]; buckets: string[] }> {
  const consumers: string[] = [];
  for (const spec of sensorConsumerSpecs(s))
    consumers.push((await ensureDependencyConsumer(jsm, spec)).durable);
  const b = sensorBuckets(s.bus.namespace, s.sensor);
  const common = { history: 1, replicas: s.replicas ?? 1, maxBytes: s.kvMaxBytes ?? DEFAULT_KV_MAX_BYTES };
  await ensureKv(jsm, b.processed, {
    ...common,
    ttl: s.processedTtlMs ?? DEFAULT_PROCESSED_TTL_MS,
    whenFull: 'forget-oldest',
    maxConsumers: PROCESSED_MAX_CONSUMERS,
  });
  await ensureKv(jsm, b.conditions, { ...common, whenFull: 'refuse' });
  return { consumers, buckets: [b.processed, b.conditions] };
}

/**
 * Deletes a Sensor's state: its consumers on the bus's event stream and its KV buckets (absent
 * ones are fine). Returns the names removed.
 */
export async function deleteSensorState(
  jsm: JetStreamManager,
  bus: BusRef,
  sensor: string,
): Promise<string[]> {
  const removed = await deleteSensorConsumers(jsm, bus, sensor, []);
  const b = sensorBuckets(bus.namespace, sensor);
  removed.push(...(await deleteBuckets(jsm, [b.processed, b.conditions])));
  return removed;
}

/** Provisions a Sensor's state (no controller), then binds to it like bindSensorState. */
export async function openSensorState(
  jsm: JetStreamManager,
  nc: NatsConnection,
  s: SensorStateSpec,
  o: BindOptions = {},
): Promise<{ consumers: string[]; processed: KV; conditions: KV }> {
  await provisionSensorState(jsm, nc, s);
  return bindSensorState(jsm, nc, s, o);
}

export interface BindOptions {
  /** Give up waiting for the controller to provision after this long (default 120 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  onWait?: (what: string) => void;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, o: BindOptions): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  let delay = 250;
  let told = false;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (!told) {
      o.onWait?.(what);
      told = true;
    }
    if (Date.now() > deadline || o.signal?.aborted)
      throw new Error(`${what} does not exist; the controller creates it (is it running?)`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5_000);
  }
}

/**
 * Waits until the controller has provisioned a Sensor's consumers and buckets, and opens them
 * without creating or changing anything (a Sensor's credential may not). Returns the durable
 * names in dependency order and the two buckets.
 */
export async function bindSensorState(
  jsm: JetStreamManager,
  nc: NatsConnection,
  s: SensorStateSpec,
  o: BindOptions = {},
): Promise<{ consumers: string[]; processed: KV; conditions: KV }> {
  const stream = eventStreamName(s.bus);
  const consumers: string[] = [];
  for (const name of sensorConsumerNames(s)) {
    await until(
      `consumer ${name} on stream ${stream}`,
      async () => {
        try {
          return await jsm.consumers.info(stream, name);
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      },
      o,
    );
    consumers.push(name);
  }
  const b = sensorBuckets(s.bus.namespace, s.sensor);
  const kvm = new Kvm(nc);
  const bind = async (bucket: string): Promise<KV> => {
    const info = await until(
      `KV bucket ${bucket}`,
      async () => {
        try {
          return await jsm.streams.info(`KV_${bucket}`);
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      },
      o,
    );
    return kvm.open(bucket, { allow_direct: info.config.allow_direct === true });
  };
  return { consumers, processed: await bind(b.processed), conditions: await bind(b.conditions) };
}
