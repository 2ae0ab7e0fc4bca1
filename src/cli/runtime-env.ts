// What `sluice eventsource` and `sluice sensor` read from their environment (set by the controller
// in their Deployment) and the Kubernetes access they share: the pod's service account or the
// kubeconfig, loaded only when something needs it (a Secret, a ConfigMap, a Lease, a watch).
import { createRequire } from 'node:module';
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Gauge } from 'prom-client';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import { BusConnection, type BusConnectOptions } from '../bus/connection.ts';
import {
  ENV_BUS_CREDENTIAL,
  ENV_BUS_TLS_CA,
  ENV_BUS_TLS_CERT,
  ENV_BUS_TLS_KEY,
  type RuntimeBus,
} from '../controller/resources/workload.ts';
import type { Logger } from '../observability/logger.ts';
import { adopt, registry } from '../observability/metrics.ts';
import { type OpsServer, startOpsServer } from '../observability/server.ts';
import { CliError } from './errors.ts';

/**
 * The Kubernetes client, loaded on first use only: it costs about 80 MiB of memory, which an
 * EventSource or Sensor that never reads a Secret, a ConfigMap or a Lease should not pay.
 */
function kubeClient(): typeof import('@kubernetes/client-node') {
  return createRequire(import.meta.url)('@kubernetes/client-node');
}

/** A base64 JSON variable the controller sets; a clear error (CliError) when it is missing or bad. */
export function fromEnv<T>(name: string, role: string): T {
  const v = process.env[name];
  if (!v)
    throw new CliError('BadInput', `${name} is not set; sluice ${role} is started by the controller with it`);
  try {
    return JSON.parse(Buffer.from(v, 'base64').toString('utf8')) as T;
  } catch {
    throw new CliError(
      'BadInput',
      `${name} is not base64-encoded JSON; sluice ${role} is started by the controller with it`,
    );
  }
}

/**
 * How a role connects to its bus: the URL and inbox prefix from SLUICE_BUS, its credential
 * (SLUICE_BUS_CREDENTIAL: an NKey seed on a managed bus, else what the bus's accessSecret holds)
 * and TLS material, from the environment the controller set. Nothing here is logged.
 */
export function runtimeBusOptions(bus: RuntimeBus, env: NodeJS.ProcessEnv = process.env): BusConnectOptions {
  const ca = env[ENV_BUS_TLS_CA] ?? bus.tls?.ca;
  const cert = env[ENV_BUS_TLS_CERT];
  const key = env[ENV_BUS_TLS_KEY];
  const tls =
    ca || cert || bus.tls?.insecureSkipVerify
      ? {
          ...(ca ? { ca } : {}),
          ...(cert && key ? { cert, key } : {}),
          ...(bus.tls?.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
        }
      : undefined;
  return {
    url: bus.url,
    ...(env[ENV_BUS_CREDENTIAL] ? { credential: env[ENV_BUS_CREDENTIAL] } : {}),
    ...(tls ? { tls } : {}),
    ...(bus.inboxPrefix ? { inboxPrefix: bus.inboxPrefix } : {}),
  };
}

export interface KubeAccessors {
  kubeConfig(): KubeConfig;
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  resolveConfigMap(sel: ConfigMapKeySelector): Promise<string>;
}

/** Lazily loaded Kubernetes access for objects in `namespace`. */
export function kubeAccessors(namespace: string): KubeAccessors {
  let kc: KubeConfig | undefined;
  let core: CoreV1Api | undefined;
  const kubeConfig = (): KubeConfig => {
    if (!kc) {
      kc = new (kubeClient().KubeConfig)();
      kc.loadFromDefault();
    }
    return kc;
  };
  const api = () => {
    core ??= kubeConfig().makeApiClient(kubeClient().CoreV1Api);
    return core;
  };
  return {
    kubeConfig,
    async resolveSecret(sel) {
      const s = await api().readNamespacedSecret({ name: sel.name ?? '', namespace });
      const v = s.data?.[sel.key];
      if (v === undefined) throw new Error(`Secret ${sel.name} has no key ${sel.key}`);
      return Buffer.from(v, 'base64').toString('utf8');
    },
    async resolveConfigMap(sel) {
      const c = await api().readNamespacedConfigMap({ name: sel.name ?? '', namespace });
      const v = c.data?.[sel.key];
      if (v === undefined) throw new Error(`ConfigMap ${sel.name} has no key ${sel.key}`);
      return v;
    },
  };
}

/** Time allowed after a role's own grace period for closing connections and flushing logs (ms). */
export const STOP_MARGIN_MS = 5_000;

/**
 * On SIGTERM/SIGINT (once): stop the role, close the bus connection and the ops server, flush
 * the log, exit 0. With `deadlineMs`, a stop that takes longer (a closer waiting on a server that
 * does not answer) is cut: the process logs what it was waiting for and exits 1, well before the
 * kubelet's SIGKILL.
 */
export function stopOnSignals(
  log: { info(o: object, msg: string): void; error?(o: object, msg: string): void; flush(): void },
  what: string,
  closers: Array<() => Promise<unknown>>,
  deadlineMs?: number,
): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `stopping: ${what}`);
    let step = 0;
    if (deadlineMs) {
      setTimeout(() => {
        (log.error ?? log.info).call(log, { step, deadlineMs }, 'stop took too long; exiting');
        log.flush();
        process.exit(1);
      }, deadlineMs).unref();
    }
    for (const close of closers) {
      step++;
      await close().catch(() => {});
    }
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

export interface RuntimeStart {
  conn: BusConnection;
  ops: OpsServer;
  /**
   * The role is running: from now on /readyz follows the bus connection and `notReady` (the
   * role's own reason not to be ready, e.g. a Sensor's consumer is gone), and /healthz follows
   * `notLive` (a reason to restart the process, e.g. publishes that never settle).
   */
  running(notReady?: () => string | undefined, notLive?: () => string | undefined): void;
}

/**
 * Starts the ops server (/metrics, /healthz, /readyz), then connects to the bus however long it
 * takes (BusConnection.openPatiently): meanwhile the pod is alive but not ready, /readyz saying
 * why, and every failed try is logged. SIGTERM/SIGINT while waiting exits 0 at once.
 */
export async function startRuntime(o: {
  metricsPort: string;
  log: Logger;
  bus: BusConnectOptions;
}): Promise<RuntimeStart> {
  let conn: BusConnection | undefined;
  let started = false;
  let roleNotReady: (() => string | undefined) | undefined;
  let roleNotLive: (() => string | undefined) | undefined;
  let waiting = 'connecting to the bus';
  adopt(
    registry(),
    new Gauge({
      name: 'sluice_bus_connected',
      help: '1 while this EventSource/Sensor process is connected to its bus, else 0 (waiting, reconnecting, closed).',
      registers: [],
      collect() {
        this.set(conn?.state === 'connected' ? 1 : 0);
      },
    }),
  );
  const ops = await startOpsServer({
    port: Number(o.metricsPort),
    registry: registry(),
    notReady: () => {
      if (!conn) return waiting;
      if (conn.state !== 'connected') return `bus ${conn.state}`;
      return started ? roleNotReady?.() : 'starting';
    },
    notLive: () => roleNotLive?.(),
  });
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error('stopped while waiting for the bus'));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    conn = await BusConnection.openPatiently(o.bus, {
      signal: abort.signal,
      onRetry: (err, retryInMs, attempt) => {
        waiting = `waiting for the bus: ${err.message}`;
        o.log.warn({ err: err.message, attempt, retryInMs }, 'bus not reachable yet; retrying');
      },
    });
  } catch (err) {
    if (!abort.signal.aborted) throw err;
    o.log.info('stopped before the bus was reachable');
    await ops.close();
    o.log.flush();
    process.exit(0);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  const c = conn;
  return {
    conn: c,
    ops,
    running: (notReady, notLive) => {
      roleNotReady = notReady;
      roleNotLive = notLive;
      started = true;
    },
  };
}
