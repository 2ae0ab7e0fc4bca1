// Starts the real Sensor and EventSource runtimes the way the role processes do, with the
// matching/parameter code of this build, no Kubernetes, and a logger chosen by the caller. The
// EventSource's is in eventsource.ts (its process loads no Sensor code, as `sluice eventsource`).
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import type { EventDependency } from '../../src/api/sensor.ts';
import { SensorSpec } from '../../src/api/sensor.ts';
import type { BusRef } from '../../src/bus/subjects.ts';
import type { Logger } from '../../src/observability/logger.ts';
import { newRegistry } from '../../src/observability/metrics.ts';
import { RUNNERS } from '../../src/sensors/runners.ts';
import { type RunningSensor, type SensorRuntimeOptions, startSensor } from '../../src/sensors/runtime.ts';
import { sensorDependencyMatcher, sensorParameters } from '../../src/sensors/wiring.ts';

export { runEventSource } from './eventsource.ts';

const noSecrets = async () => {
  throw new Error('the benchmarks use no Secrets or ConfigMaps');
};

/** Whether this build's dependency matcher accepts `dep` (filters may be refused by early builds). */
export function dependencySupported(dep: EventDependency): { ok: true } | { ok: false; reason: string } {
  try {
    sensorDependencyMatcher(dep);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

export async function runSensor(o: {
  name: string;
  bus: BusRef;
  nc: NatsConnection;
  spec: unknown;
  log: Logger;
  registry?: Registry;
  extra?: Partial<SensorRuntimeOptions>;
}): Promise<RunningSensor & { registry: Registry }> {
  const registry = o.registry ?? newRegistry();
  const running = await startSensor({
    name: o.name,
    namespace: o.bus.namespace,
    spec: SensorSpec.parse(o.spec),
    bus: o.bus,
    nc: o.nc,
    registry,
    log: o.log,
    runners: RUNNERS,
    compileDependency: sensorDependencyMatcher,
    params: sensorParameters,
    resolveSecret: noSecrets,
    resolveConfigMap: noSecrets,
    ...o.extra,
  });
  return { ...running, registry };
}

/** Sum of a counter/gauge in `registry`, over the series whose labels match. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  return data.values
    .filter((v) => !String((v as { metricName?: string }).metricName ?? '').endsWith('_bucket'))
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((a, v) => a + v.value, 0);
}
