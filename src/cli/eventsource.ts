// `sluice eventsource`: runs the EventSource handed over by the controller (SLUICE_OBJECT,
// SLUICE_BUS, SLUICE_BUS_CREDENTIAL, as set in its Deployment).
import { EventSourceSpec } from '../api/eventsource.ts';
import { streamConfigDuplicatesMs } from '../api/stream-config.ts';
import { Publisher } from '../bus/publisher.ts';
import { ENV_BUS, ENV_OBJECT, type RuntimeBus } from '../controller/resources/workload.ts';
import { startEventSource } from '../eventsources/runtime.ts';
import { hiddenHeadersFromEnv, idHeadersFromEnv } from '../eventsources/webhook/headers.ts';
import { limitsFromEnv } from '../eventsources/webhook/limits.ts';
import { createLogger, setRootLogger } from '../observability/logger.ts';
import { registry } from '../observability/metrics.ts';
import {
  fromEnv,
  kubeAccessors,
  runtimeBusOptions,
  STOP_MARGIN_MS,
  startRuntime,
  stopOnSignals,
} from './runtime-env.ts';

/** Longest wait for the bus connection to drain on stop (a paused server never confirms). */
const BUS_CLOSE_MS = 2_000;

const closeWithin = (closing: Promise<void>, ms: number): Promise<void> =>
  Promise.race([closing, new Promise<void>((r) => setTimeout(r, ms).unref())]);

export async function runEventSource(flags: { metricsPort: string; logLevel?: string }): Promise<void> {
  const obj = fromEnv<{ metadata: { name: string; namespace: string }; spec: unknown }>(
    ENV_OBJECT,
    'eventsource',
  );
  const bus = fromEnv<RuntimeBus>(ENV_BUS, 'eventsource');
  const log = createLogger({
    base: { role: 'eventsource', eventsource: obj.metadata.name, namespace: obj.metadata.namespace },
    ...(flags.logLevel ? { level: flags.logLevel } : {}),
  });
  setRootLogger(log);
  const spec = EventSourceSpec.parse(obj.spec);
  const limits = limitsFromEnv();

  const {
    conn,
    ops,
    running: ready,
  } = await startRuntime({
    metricsPort: flags.metricsPort,
    log,
    bus: { ...runtimeBusOptions(bus), name: `eventsource/${obj.metadata.namespace}/${obj.metadata.name}` },
  });
  conn.on('state', (state) => log.info({ state }, 'bus connection'));
  const { kubeConfig, resolveSecret } = kubeAccessors(obj.metadata.namespace);
  const publisher = new Publisher(conn.nc);
  const running = await startEventSource({
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    spec,
    bus: { namespace: bus.namespace, busName: bus.busName },
    publisher,
    nc: conn.nc,
    kubeConfig,
    ...(process.env.POD_NAME ? { identity: process.env.POD_NAME } : {}),
    // Webhook bounds and the publish deadline (SLUICE_WEBHOOK_*, see webhook/limits.ts).
    limits,
    // From the streamConfig the controller made the stream with: no stream info needed (which an
    // EventSource's credential may not read).
    duplicatesWindowMs: streamConfigDuplicatesMs(bus.streamConfig),
    hiddenHeaders: hiddenHeadersFromEnv(),
    idHeaders: idHeadersFromEnv(),
    ...(process.env.SLUICE_STATE_DIR ? { stateDir: process.env.SLUICE_STATE_DIR } : {}),
    registry: registry(),
    log,
    resolveSecret,
  });
  // Not ready while publishes never settle (then not live either: restart it) or while a source
  // reports that it cannot consume.
  ready(
    () => publisher.wedged() ?? running.notReady(),
    () => publisher.wedged(),
  );
  log.info({ metricsPort: ops.port, webhookPorts: Object.fromEntries(running.ports) }, 'eventsource running');
  // Bounded: the webhook servers take at most the grace period, the rest a few seconds more.
  stopOnSignals(
    log,
    'finishing in-flight requests',
    [() => running.stop(), () => closeWithin(conn.close(), BUS_CLOSE_MS), () => ops.close()],
    limits.stopGraceMs + STOP_MARGIN_MS,
  );
}
