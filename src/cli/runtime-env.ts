// What `sluice eventsource` and `sluice sensor` read from their environment (set by the controller
// in their Deployment) and the Kubernetes access they share: the pod's service account or the
// kubeconfig, loaded only when something needs it (a Secret, a ConfigMap, a Lease, a watch).
import { createRequire } from 'node:module';
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import type { BusConnectOptions } from '../bus/connection.ts';
import {
  ENV_BUS_CREDENTIAL,
  ENV_BUS_TLS_CA,
  ENV_BUS_TLS_CERT,
  ENV_BUS_TLS_KEY,
  type RuntimeBus,
} from '../controller/resources/workload.ts';

type ClientNode = typeof import('@kubernetes/client-node');
let clientNode: ClientNode | undefined;
/**
 * @kubernetes/client-node, loaded on first use: it adds about 60 MiB to a process's resident
 * memory, and most EventSources and Sensors never talk to Kubernetes.
 */
const client = (): ClientNode => {
  clientNode ??= createRequire(import.meta.url)('@kubernetes/client-node') as ClientNode;
  return clientNode;
};

/** A base64 JSON variable the controller sets; a clear error when it is missing. */
export function fromEnv<T>(name: string, role: string): T {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; sluice ${role} is started by the controller with it`);
  return JSON.parse(Buffer.from(v, 'base64').toString('utf8')) as T;
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
      kc = new (client().KubeConfig)();
      kc.loadFromDefault();
    }
    return kc;
  };
  const api = () => {
    core ??= kubeConfig().makeApiClient(client().CoreV1Api);
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

/**
 * On SIGTERM/SIGINT (once): stop the role, close the bus connection and the ops server, flush
 * the log, exit 0.
 */
export function stopOnSignals(
  log: { info(o: object, msg: string): void; flush(): void },
  what: string,
  closers: Array<() => Promise<unknown>>,
): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `stopping: ${what}`);
    for (const close of closers) await close();
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
