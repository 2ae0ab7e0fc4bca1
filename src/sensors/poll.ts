// Consumer lag, age of the oldest unsettled event and DLQ depth of one Sensor, every few seconds.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { InFlight } from '../bus/consumer.ts';
import { type BusRef, dlqStreamName, dlqSubject, eventStreamName } from '../bus/subjects.ts';
import type { SensorMetrics } from './metrics.ts';

export interface LagPollerOptions {
  jsm: JetStreamManager;
  bus: BusRef;
  namespace: string;
  sensorName: string;
  metrics: SensorMetrics;
  consumers: ReadonlyArray<{ dependency: string; durable: string; inFlight: InFlight }>;
  everyMs?: number;
}

export function startLagPoller(o: LagPollerOptions): { stop(): void } {
  const { jsm, metrics } = o;
  const poll = async () => {
    for (const { dependency, durable, inFlight } of o.consumers) {
      const dl = { namespace: o.namespace, sensor_name: o.sensorName, dependency };
      try {
        const ci = await jsm.consumers.info(eventStreamName(o.bus), durable);
        metrics.pending.set(dl, ci.num_pending);
        metrics.ackPending.set(dl, ci.num_ack_pending);
        // The oldest event in hand (delivery is in stream order, so it is the oldest unsettled
        // one while this process consumes); read without access to the stream itself.
        metrics.oldestUnackedAge.set(dl, inFlight.oldestAgeSeconds());
      } catch {
        // the bus is unreachable; the connection state is reported elsewhere
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
  return { stop: () => clearInterval(timer) };
}
