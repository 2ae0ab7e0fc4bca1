// Consumer lag, age of the oldest unsettled event and DLQ depth of one Sensor, every few seconds.
// A dependency's consumer that is gone (deleted by hand, or by a tool) is reported: the stream
// keeps events only for existing consumers (interest retention), so while it is missing events of
// that dependency are not kept for the Sensor. It is logged once, shown by
// sluice_sensor_consumer_missing{dependency} and makes the Sensor not ready until it is back.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { InFlight } from '../bus/consumer.ts';
import { isNotFound } from '../bus/errors.ts';
import { type BusRef, dlqStreamName, dlqSubject, eventStreamName } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import type { SensorMetrics } from './metrics.ts';

export interface LagPollerOptions {
  jsm: JetStreamManager;
  bus: BusRef;
  namespace: string;
  sensorName: string;
  metrics: SensorMetrics;
  consumers: ReadonlyArray<{ dependency: string; durable: string; inFlight: InFlight }>;
  everyMs?: number;
  log?: Logger;
}

export interface LagPoller {
  stop(): void;
  /** Why the Sensor is not doing its job (a consumer is missing), or undefined. */
  notReady(): string | undefined;
  /** Polls now (also done every `everyMs`). */
  poll(): Promise<void>;
}

export function startLagPoller(o: LagPollerOptions): LagPoller {
  const { jsm, metrics } = o;
  const missing = new Set<string>();
  const setMissing = (dependency: string, durable: string, gone: boolean) => {
    metrics.consumerMissing.set(
      { namespace: o.namespace, sensor_name: o.sensorName, dependency },
      gone ? 1 : 0,
    );
    if (gone === missing.has(dependency)) return;
    if (gone) {
      missing.add(dependency);
      o.log?.error(
        { dependency, consumer: durable },
        'the consumer of this dependency is gone: its events are not kept for the Sensor until the controller re-creates it',
      );
    } else {
      missing.delete(dependency);
      o.log?.info({ dependency, consumer: durable }, 'the consumer of this dependency is back');
    }
  };
  const poll = async () => {
    for (const { dependency, durable, inFlight } of o.consumers) {
      const dl = { namespace: o.namespace, sensor_name: o.sensorName, dependency };
      try {
        const ci = await jsm.consumers.info(eventStreamName(o.bus), durable);
        setMissing(dependency, durable, false);
        metrics.pending.set(dl, ci.num_pending);
        metrics.ackPending.set(dl, ci.num_ack_pending);
        // The oldest event in hand (delivery is in stream order, so it is the oldest unsettled
        // one while this process consumes); read without access to the stream itself.
        metrics.oldestUnackedAge.set(dl, inFlight.oldestAgeSeconds());
      } catch (err) {
        if (isNotFound(err)) setMissing(dependency, durable, true);
        // otherwise the bus is unreachable; the connection state is reported elsewhere
      }
    }
    try {
      const si = await jsm.streams.info(dlqStreamName(o.bus), {
        subjects_filter: dlqSubject(o.bus, o.sensorName, '*').replace(/\.[^.]*$/, '.*'),
      });
      const counts = si.state.subjects ?? {};
      metrics.dlqDepth.set(
        { namespace: o.namespace, sensor_name: o.sensorName },
        Object.values(counts).reduce((a, b) => a + b, 0),
      );
    } catch {
      // no DLQ stream yet
    }
  };
  const timer = setInterval(() => void poll(), o.everyMs ?? 5000);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    poll,
    notReady: () =>
      missing.size ? `consumer missing for dependencies ${[...missing].sort().join(', ')}` : undefined,
  };
}
