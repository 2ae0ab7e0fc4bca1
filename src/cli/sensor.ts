// `sluice sensor`: runs the Sensor handed over by the controller (SLUICE_OBJECT, SLUICE_BUS,
// SLUICE_BUS_CREDENTIAL, as set in its Deployment). SIGTERM stops pulling, lets running trigger
// calls finish (un-acked messages come back to the next process otherwise), then exits 0.
import { SensorSpec } from '../api/sensor.ts';
import { ENV_BUS, ENV_OBJECT, type RuntimeBus } from '../controller/resources/workload.ts';
import { createLogger, setRootLogger } from '../observability/logger.ts';
import { registry } from '../observability/metrics.ts';
import { DEFAULT_DRAIN_MS } from '../sensors/options.ts';
import { RUNNERS } from '../sensors/runners.ts';
import { startSensor } from '../sensors/runtime.ts';
import { sensorDependencyMatcher, sensorParameters } from '../sensors/wiring.ts';
import { CliError } from './errors.ts';
import {
  fromEnv,
  kubeAccessors,
  runtimeBusOptions,
  STOP_MARGIN_MS,
  startRuntime,
  stopOnSignals,
} from './runtime-env.ts';

export async function runSensor(flags: { metricsPort: string; logLevel?: string }): Promise<void> {
  const obj = fromEnv<{ metadata: { name: string; namespace: string }; spec: unknown }>(ENV_OBJECT, 'sensor');
  const bus = fromEnv<RuntimeBus>(ENV_BUS, 'sensor');
  const log = createLogger({
    base: { role: 'sensor' },
    ...(flags.logLevel ? { level: flags.logLevel } : {}),
  });
  setRootLogger(log);
  const spec = SensorSpec.parse(obj.spec);
  const ns = obj.metadata.namespace;
  // Read before waiting for the bus: a bad value is reported at once, not once the bus answers.
  const drainMs = drainFromEnv(process.env.SLUICE_SENSOR_DRAIN_MS) ?? DEFAULT_DRAIN_MS;

  const {
    conn,
    ops,
    running: ready,
  } = await startRuntime({
    metricsPort: flags.metricsPort,
    log,
    bus: { ...runtimeBusOptions(bus), name: `sensor/${ns}/${obj.metadata.name}` },
  });
  conn.on('state', (state) => log.info({ state }, 'bus connection'));
  const { kubeConfig, resolveSecret, resolveConfigMap } = kubeAccessors(ns);
  const running = await startSensor({
    name: obj.metadata.name,
    namespace: ns,
    spec,
    bus: { namespace: bus.namespace, busName: bus.busName },
    nc: conn.nc,
    registry: registry(),
    log,
    runners: RUNNERS,
    compileDependency: sensorDependencyMatcher,
    params: sensorParameters,
    resolveSecret,
    resolveConfigMap,
    kubeConfig,
    ...(process.env.POD_NAME ? { identity: process.env.POD_NAME } : {}),
    ...(bus.provisioned ? { provisioned: true } : {}),
    ...(process.env.SLUICE_ACK_WAIT_MS ? { ackWaitMs: Number(process.env.SLUICE_ACK_WAIT_MS) } : {}),
    drainMs,
  });
  ready(() => running.notReady());
  log.info({ metricsPort: ops.port }, 'sensor running');
  // Calls get drainMs; what follows them (done marks, acks, closing the connection) gets the
  // margin, so a bus that stopped answering cannot hold SIGTERM up until the kubelet's SIGKILL.
  stopOnSignals(
    log,
    'finishing running triggers',
    [() => running.stop(), () => conn.close(), () => ops.close()],
    drainMs + STOP_MARGIN_MS,
  );
}

/**
 * Longest SLUICE_SENSOR_DRAIN_MS (ms, one day). Node timers hold at most 2^31-1 ms (about 24.8
 * days) and fire at once beyond that, so a larger drain would cut the calls, and the stop deadline
 * (drain + STOP_MARGIN_MS) exit 1, the moment SIGTERM arrives.
 */
export const MAX_DRAIN_MS = 86_400_000;

/**
 * SLUICE_SENSOR_DRAIN_MS: how long SIGTERM lets trigger calls under way run before they are cut
 * (ms, default DEFAULT_DRAIN_MS, 20 s). Keep it below the pod's termination grace period (30 s
 * unless the template sets `terminationGracePeriodSeconds`). Throws a CliError (BadInput, exit 2)
 * on a value that is not a whole number of milliseconds from 0 to MAX_DRAIN_MS.
 */
function drainFromEnv(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const ms = Number(text);
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_DRAIN_MS)
    throw new CliError(
      'BadInput',
      `SLUICE_SENSOR_DRAIN_MS must be a whole number of milliseconds from 0 to ${MAX_DRAIN_MS}, not ${JSON.stringify(text)}`,
    );
  return ms;
}
