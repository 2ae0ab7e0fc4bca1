// One prom-client Registry per process. Components register their metrics on it through
// `registry()`; the role's HTTP server exposes it on /metrics.
import { collectDefaultMetrics, Registry } from 'prom-client';

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
