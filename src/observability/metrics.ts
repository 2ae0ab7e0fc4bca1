// One prom-client Registry per process. Components register their metrics on it through
// `registry()`; the role's HTTP server exposes it on /metrics.
import { collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import { VERSION } from '../version.ts';

let current: Registry | undefined;

/** The process-wide registry, created (with Node process metrics) on first use. */
export function registry(): Registry {
  if (!current) {
    current = new Registry();
    collectDefaultMetrics({ register: current });
    buildInfo(current);
  }
  return current;
}

/** A fresh registry, for tests and for running several roles in one process. */
export function newRegistry(withDefaults = false): Registry {
  const r = new Registry();
  if (withDefaults) {
    collectDefaultMetrics({ register: r });
    buildInfo(r);
  }
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

/** What `sluice_build_info` reports: the package version, the commit and the Node.js version. */
export interface BuildInfo {
  version: string;
  /** Git commit the image was built from (SLUICE_COMMIT, set by `make image`), else "unknown". */
  commit: string;
  node_version: string;
}

/** The build of this process; `env` is read for SLUICE_COMMIT. */
export function currentBuild(env: NodeJS.ProcessEnv = process.env): BuildInfo {
  return { version: VERSION, commit: env.SLUICE_COMMIT || 'unknown', node_version: process.version };
}

/**
 * Registers `sluice_build_info{version,commit,node_version} 1` on `registry` (once), the usual
 * info-gauge shape: join it on `instance` to label other series with the running build.
 */
export function buildInfo(registry: Registry, build: BuildInfo = currentBuild()): void {
  const gauge = adopt(
    registry,
    new Gauge({
      name: 'sluice_build_info',
      help: 'Always 1; the labels say which sluice build, commit and Node.js version this process runs.',
      labelNames: ['version', 'commit', 'node_version'],
      registers: [],
    }),
  );
  gauge.set({ ...build }, 1);
}
