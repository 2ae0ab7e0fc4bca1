// One sluice role (EventSource or Sensor) in its own process, as in a deployment where each runs
// in its own pod: `node bench/lib/role.ts <eventsource|sensor> <json config>`. Reports the
// webhook port (EventSource) when ready; `metrics` returns the Prometheus text.
import type { BusTls } from '../../src/api/bus-config.ts';
import { BusConnection } from '../../src/bus/connection.ts';
import type { BusRef } from '../../src/bus/subjects.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { serveParent } from './child.ts';

export interface RoleConfig {
  natsUrl: string;
  /** TLS towards NATS (e.g. `{ ca }`); plain when absent and the server does not offer TLS. */
  tls?: BusTls;
  /** Address an EventSource's servers bind (default loopback). */
  host?: string;
  bus: BusRef;
  name: string;
  spec: unknown;
}

const [role, json] = process.argv.slice(2);
const cfg = JSON.parse(json ?? '{}') as RoleConfig;
const conn = await BusConnection.open({ url: cfg.natsUrl, name: `bench-${role}`, tls: cfg.tls });
const log = createLogger({ level: 'warn', destination: process.stderr });

if (role === 'eventsource') {
  // Each role loads only its own runtime, as its `sluice` command does.
  const { runEventSource } = await import('./eventsource.ts');
  const es = await runEventSource({
    name: cfg.name,
    bus: cfg.bus,
    nc: conn.nc,
    spec: cfg.spec,
    log,
    ...(cfg.host ? { host: cfg.host } : {}),
  });
  serveParent(
    { ports: Object.fromEntries(es.ports) },
    {
      metrics: () => es.registry.metrics(),
      stop: () => es.stop(),
    },
  );
} else if (role === 'sensor') {
  const { runSensor } = await import('./runtime.ts');
  const s = await runSensor({ name: cfg.name, bus: cfg.bus, nc: conn.nc, spec: cfg.spec, log });
  serveParent(
    {},
    {
      metrics: () => s.registry.metrics(),
      stop: () => s.stop(),
    },
  );
} else {
  throw new Error(`unknown role ${role}`);
}
