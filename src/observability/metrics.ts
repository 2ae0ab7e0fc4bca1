// One prom-client Registry per process. Components register their metrics on it through
// `registry()`; the role's HTTP server exposes it on /metrics.
import { collectDefaultMetrics, type Metric, Registry } from 'prom-client';

let current: Registry | undefined;

/** The process-wide registry, created (with Node process metrics) on first use. */
export function registry(): Registry {
  if (!current) {
    current = new Registry();
    collectDefaultMetrics({ register: current });
  }
  return current;
}

/** A fresh registry, for tests and for running several roles in one process. */
export function newRegistry(withDefaults = false): Registry {
  const r = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: r });
  return r;
}

/**
 * Registers `metric` on `registry`, or returns the metric of that name already there (several
 * EventSources or Sensors in one process, as in `sluice dev`, share one set of series told apart
 * by their labels). Create the metric with `registers: []`.
 */
export function adopt<T extends Metric>(registry: Registry, metric: T): T {
  const existing = registry.getSingleMetric((metric as unknown as { name: string }).name);
  if (existing) return existing as unknown as T;
  registry.registerMetric(metric);
  return metric;
}
