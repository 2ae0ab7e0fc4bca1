// Gauges of the process-wide webhook bounds, read when Prometheus scrapes: request-body bytes held,
// open connections, requests displaced from the byte budget, connections refused at the bound.
import { Gauge, type Registry } from 'prom-client';
import { adopt } from '../../observability/metrics.ts';
import type { ProcessBounds } from './server.ts';

/** Registers the gauges on `registry` (once per registry), reading `bounds` at each scrape. */
export function webhookMetrics(registry: Registry, bounds: ProcessBounds): void {
  const gauge = (name: string, help: string, read: () => number) =>
    adopt(
      registry,
      new Gauge({
        name,
        help,
        registers: [],
        collect() {
          this.set(read());
        },
      }),
    );
  gauge(
    'sluice_webhook_buffered_bytes',
    'Request-body bytes held in memory by webhook servers.',
    () => bounds.budget.used,
  );
  gauge(
    'sluice_webhook_buffered_bytes_limit',
    'Most request-body bytes webhook servers may hold.',
    () => bounds.budget.capacity,
  );
  gauge(
    'sluice_webhook_connections',
    'Open client connections on webhook ports.',
    () => bounds.connections.current,
  );
  gauge(
    'sluice_webhook_connections_limit',
    'Most open client connections on webhook ports (the process-wide bound).',
    () => bounds.connections.capacity,
  );
  gauge(
    'sluice_webhook_displaced_requests',
    'Uploads cut (503) to make room for smaller requests since the process started.',
    () => bounds.budget.displaced,
  );
  gauge(
    'sluice_webhook_refused_connections',
    'Connections closed at once because the connection bound was reached with a request in progress on every open one, since the process started.',
    () => bounds.connections.refused,
  );
  gauge(
    'sluice_webhook_evicted_connections',
    'Connections without a request in progress closed at the connection bound to admit new ones, since the process started.',
    () => bounds.connections.evicted,
  );
}
