// Prometheus metrics for the control-plane building blocks, wired through their hooks. Names follow
// controller-runtime (workqueue_*, leader_election_master_status) so existing dashboards apply;
// informer metrics are sluice's own.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { InformerHooks } from './informer.ts';
import type { WorkQueueHooks } from './workqueue.ts';

const latencyBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60];

function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** Hooks that record a work queue's depth, adds, latency, work duration and retries under label `name`. */
export function workQueueMetrics(registry: Registry, name: string): WorkQueueHooks {
  const registers = [registry];
  const depth = once(
    registry,
    'workqueue_depth',
    () =>
      new Gauge({
        name: 'workqueue_depth',
        help: 'Keys waiting in the work queue.',
        labelNames: ['name'],
        registers,
      }),
  );
  const adds = once(
    registry,
    'workqueue_adds_total',
    () =>
      new Counter({
        name: 'workqueue_adds_total',
        help: 'Keys added to the work queue.',
        labelNames: ['name'],
        registers,
      }),
  );
  const latency = once(
    registry,
    'workqueue_queue_duration_seconds',
    () =>
      new Histogram({
        name: 'workqueue_queue_duration_seconds',
        help: 'Time a key waits in the work queue before a worker takes it.',
        labelNames: ['name'],
        buckets: latencyBuckets,
        registers,
      }),
  );
  const work = once(
    registry,
    'workqueue_work_duration_seconds',
    () =>
      new Histogram({
        name: 'workqueue_work_duration_seconds',
        help: 'Time spent processing one key.',
        labelNames: ['name'],
        buckets: latencyBuckets,
        registers,
      }),
  );
  const retries = once(
    registry,
    'workqueue_retries_total',
    () =>
      new Counter({
        name: 'workqueue_retries_total',
        help: 'Keys re-queued after a failure.',
        labelNames: ['name'],
        registers,
      }),
  );
  const labels = { name };
  return {
    depth: (n) => depth.set(labels, n),
    add: () => adds.inc(labels),
    queueLatency: (s) => latency.observe(labels, s),
    workDuration: (s) => work.observe(labels, s),
    retry: () => retries.inc(labels),
  };
}

/** Hooks that count an informer's watch restarts and relists under label `resource`. */
export function informerMetrics(registry: Registry, resource: string): InformerHooks {
  const registers = [registry];
  const restarts = once(
    registry,
    'sluice_watch_restarts_total',
    () =>
      new Counter({
        name: 'sluice_watch_restarts_total',
        help: 'Watches re-opened, by reason (closed by the server, error, 410 Gone).',
        labelNames: ['resource', 'reason'],
        registers,
      }),
  );
  const relists = once(
    registry,
    'sluice_watch_relists_total',
    () =>
      new Counter({
        name: 'sluice_watch_relists_total',
        help: 'Full LISTs, by reason (initial, 410 Gone).',
        labelNames: ['resource', 'reason'],
        registers,
      }),
  );
  return {
    watchRestart: (reason) => restarts.inc({ resource, reason }),
    relist: (reason) => relists.inc({ resource, reason }),
  };
}

/** A gauge that is 1 while this process leads `lease`; call the returned setter from the elector callbacks. */
export function leaderMetric(registry: Registry, lease: string): (leading: boolean) => void {
  const gauge = once(
    registry,
    'leader_election_master_status',
    () =>
      new Gauge({
        name: 'leader_election_master_status',
        help: '1 while this process holds the leader Lease, else 0.',
        labelNames: ['name'],
        registers: [registry],
      }),
  );
  gauge.set({ name: lease }, 0);
  return (leading) => gauge.set({ name: lease }, leading ? 1 : 0);
}
