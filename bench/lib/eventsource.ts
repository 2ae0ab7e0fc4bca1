// Starts the real EventSource runtime the way `sluice eventsource` does, without Kubernetes and
// without loading any Sensor code (so a role process measures what an EventSource pod holds).
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import { EventSourceSpec } from '../../src/api/eventsource.ts';
import { Publisher } from '../../src/bus/publisher.ts';
import type { BusRef } from '../../src/bus/subjects.ts';
import { type RunningEventSource, startEventSource } from '../../src/eventsources/runtime.ts';
import type { Logger } from '../../src/observability/logger.ts';
import { newRegistry } from '../../src/observability/metrics.ts';
import { HOST } from './common.ts';

const noSecrets = async () => {
  throw new Error('the benchmarks use no Secrets');
};

/** Starts EventSource `o.name` (webhooks on loopback unless `o.host`); its registry is returned with it. */
export async function runEventSource(o: {
  name: string;
  bus: BusRef;
  nc: NatsConnection;
  spec: unknown;
  log: Logger;
  registry?: Registry;
  /** Address the webhook servers bind (default loopback). */
  host?: string;
}): Promise<RunningEventSource & { registry: Registry }> {
  const registry = o.registry ?? newRegistry();
  const running = await startEventSource({
    name: o.name,
    namespace: o.bus.namespace,
    spec: EventSourceSpec.parse(o.spec),
    bus: o.bus,
    publisher: new Publisher(o.nc),
    nc: o.nc,
    registry,
    log: o.log,
    resolveSecret: noSecrets,
    host: o.host ?? HOST,
  });
  return { ...running, registry };
}
