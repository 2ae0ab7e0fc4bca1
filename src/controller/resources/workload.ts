// Desired children of an EventSource or Sensor: a Deployment whose container runs
// `sluice eventsource` / `sluice sensor` with the object and its bus connection handed over in the
// environment, and (EventSource with `spec.service`) a Service for its webhook ports.
// Pure: object in, manifests out.
import type { V1Container, V1Deployment, V1EnvVar, V1Service } from '@kubernetes/client-node';
import type { Template } from '../../api/common.ts';
import {
  ANNOTATION_SPEC_HASH,
  childMeta,
  dnsName,
  type Owner,
  selectorLabels,
  specHash,
  withSecurityDefaults,
} from './common.ts';

export const METRICS_PORT = 7777;
/** Env var carrying the object (JSON, base64) the runtime runs. */
export const ENV_OBJECT = 'SLUICE_OBJECT';
/** Env var carrying the bus connection (JSON, base64) without secrets. */
export const ENV_BUS = 'SLUICE_BUS';
/** Env var carrying the bus credential, from the bus Secret. */
export const ENV_BUS_CREDENTIAL = 'SLUICE_BUS_CREDENTIAL';
/** Env var with the runtime's log level (the controller's --log-level for runtimes, or the template's). */
export const ENV_LOG_LEVEL = 'SLUICE_LOG_LEVEL';
/** Env vars carrying a client certificate and key for the bus (jetstreamExotic.tls), from Secrets. */
export const ENV_BUS_TLS_CERT = 'SLUICE_BUS_TLS_CERT';
export const ENV_BUS_TLS_KEY = 'SLUICE_BUS_TLS_KEY';
/** Env var carrying the bus CA from a Secret (jetstreamExotic.tls.caCertSecret). */
export const ENV_BUS_TLS_CA = 'SLUICE_BUS_TLS_CA';

/** What a runtime needs to reach its bus; secrets travel separately (ENV_BUS_CREDENTIAL). */
export interface RuntimeBus {
  /** EventBus name and namespace, for subjects and stream names. */
  busName: string;
  namespace: string;
  url: string;
  /** Upstream-style streamConfig YAML, if any. */
  streamConfig?: string;
  /** The controller created the Sensor's consumers and KV buckets: bind, never create. */
  provisioned?: boolean;
  /** Prefix of reply subjects; the role's credential may subscribe only below it. */
  inboxPrefix?: string;
  /**
   * TLS towards the bus: the CA to verify servers with (public, so it travels here). Client
   * certificates come from Secrets through SLUICE_BUS_TLS_CERT / SLUICE_BUS_TLS_KEY.
   */
  tls?: { ca?: string; insecureSkipVerify?: boolean };
}

export interface WorkloadOptions {
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  bus: RuntimeBus;
  /** Secret key with the bus credential (NKey seed, token, user:password or creds file). */
  busCredential?: { name: string; key: string };
  /** Changes when the credential is rotated (its public key), so the pods roll with it. */
  busCredentialVersion?: string;
  /** Secret keys with the bus CA and a client certificate and key (TLS towards the bus). */
  busTlsSecrets?: {
    ca?: { name: string; key: string };
    cert?: { name: string; key: string };
    key?: { name: string; key: string };
  };
  /** Log level handed to the runtime. */
  logLevel?: string;
}

interface RunnableObject {
  apiVersion: string;
  kind: 'EventSource' | 'Sensor';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    labels?: Record<string, string>;
  };
  spec: { template?: Template; replicas?: number; service?: unknown; [key: string]: unknown };
}

/**
 * The restricted Pod Security Standard for the runtime container; a template's securityContext is
 * laid over it field by field (withSecurityDefaults).
 */
const DEFAULT_CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export function workloadName(obj: { kind: string; metadata: { name: string } }): string {
  const prefix = obj.kind === 'Sensor' ? 'sensor' : 'eventsource';
  return dnsName(`${prefix}-${obj.metadata.name}`);
}

/** Probe timeout of EventSource/Sensor pods, in seconds. */
export const PROBE_TIMEOUT_S = 5;
/** Size bound of the writable /tmp the pods get (their root filesystem is read-only). */
export const TMP_SIZE_LIMIT = '256Mi';
const TMP_VOLUME = 'sluice-tmp';

type Mount = { name: string; mountPath: string; [k: string]: unknown };
type Volume = { name: string; [k: string]: unknown };

/**
 * The template's volumes and mounts plus a bounded emptyDir on /tmp (Node, TLS libraries and
 * sources that unpack archives write there; the root filesystem is read-only), unless the
 * template mounts something on /tmp itself.
 */
function scratchTmp(
  mounts: Mount[] = [],
  volumes: Volume[] = [],
): { volumeMounts: Mount[]; volumes: Volume[] } {
  if (mounts.some((m) => m.mountPath.replace(/\/+$/, '') === '/tmp'))
    return { volumeMounts: mounts, volumes };
  return {
    volumeMounts: [...mounts, { name: TMP_VOLUME, mountPath: '/tmp' }],
    volumes: [...volumes, { name: TMP_VOLUME, emptyDir: { sizeLimit: TMP_SIZE_LIMIT } }],
  };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');

export function deploymentFor(owner: Owner, obj: RunnableObject, opts: WorkloadOptions): V1Deployment {
  const role = obj.kind === 'Sensor' ? 'sensor' : 'eventsource';
  const tpl = obj.spec.template ?? {};
  const labels = selectorLabels(owner, role);
  // What the runtime sees; status and server-managed metadata are left out so they cannot roll pods.
  const handedOver = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      labels: obj.metadata.labels,
    },
    spec: obj.spec,
  };
  const own = (tpl.container?.env as V1EnvVar[] | undefined) ?? [];
  const env: V1EnvVar[] = [
    { name: ENV_OBJECT, value: b64(handedOver) },
    { name: ENV_BUS, value: b64(opts.bus) },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ...(opts.busCredential
      ? [
          {
            name: ENV_BUS_CREDENTIAL,
            valueFrom: { secretKeyRef: { name: opts.busCredential.name, key: opts.busCredential.key } },
          },
        ]
      : []),
    ...(
      [
        [ENV_BUS_TLS_CA, opts.busTlsSecrets?.ca],
        [ENV_BUS_TLS_CERT, opts.busTlsSecrets?.cert],
        [ENV_BUS_TLS_KEY, opts.busTlsSecrets?.key],
      ] as const
    ).flatMap(([name, sel]) =>
      sel ? [{ name, valueFrom: { secretKeyRef: { name: sel.name, key: sel.key } } }] : [],
    ),
    // The template may choose its own pods' log level (the only variable of ours it may set).
    ...(opts.logLevel && !own.some((e) => e.name === ENV_LOG_LEVEL)
      ? [{ name: ENV_LOG_LEVEL, value: opts.logLevel }]
      : []),
    ...own,
  ];
  const c = tpl.container;
  const container: V1Container = {
    name: 'main',
    image: opts.image,
    imagePullPolicy: c?.imagePullPolicy ?? opts.imagePullPolicy ?? 'IfNotPresent',
    args: [role, '--metrics-port', String(METRICS_PORT)],
    env,
    ...(c?.envFrom ? { envFrom: c.envFrom as never } : {}),
    ports: [{ name: 'metrics', containerPort: METRICS_PORT }],
    // Kubernetes' 1 s default timeout fails a busy pod (a webhook burst, a node under load).
    readinessProbe: {
      httpGet: { path: '/readyz', port: METRICS_PORT },
      periodSeconds: 5,
      timeoutSeconds: PROBE_TIMEOUT_S,
    },
    livenessProbe: {
      httpGet: { path: '/healthz', port: METRICS_PORT },
      periodSeconds: 20,
      timeoutSeconds: PROBE_TIMEOUT_S,
      failureThreshold: 3,
    },
    securityContext: withSecurityDefaults(DEFAULT_CONTAINER_SECURITY, c?.securityContext) as never,
    ...(c?.resources ? { resources: c.resources as never } : {}),
  };
  const tmp = scratchTmp(c?.volumeMounts as Mount[] | undefined, tpl.volumes as Volume[] | undefined);
  if (tmp.volumeMounts.length) container.volumeMounts = tmp.volumeMounts as never;
  const hash = specHash({
    handedOver: { ...handedOver, metadata: { ...handedOver.metadata, uid: undefined } },
    opts,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMeta(owner, workloadName(obj), role),
    spec: {
      replicas: obj.spec.replicas ?? 1,
      // A Sensor with one replica has no leader election: a rolling update would run the old and
      // the new pod side by side, two consumers of one Sensor (its strict rateLimit doubled, its
      // orderingKey order broken). Recreate stops the old pod first. With replicas > 1 only the
      // Lease holder consumes, so pods may overlap and a rollout keeps one running.
      ...(role === 'sensor'
        ? { strategy: { type: (obj.spec.replicas ?? 1) > 1 ? 'RollingUpdate' : 'Recreate' } }
        : {}),
      selector: { matchLabels: labels },
      template: {
        metadata: {
          labels: { ...tpl.metadata?.labels, ...labels },
          annotations: { ...tpl.metadata?.annotations, [ANNOTATION_SPEC_HASH]: hash },
        },
        spec: {
          ...(tpl.serviceAccountName ? { serviceAccountName: tpl.serviceAccountName } : {}),
          ...(tpl.nodeSelector ? { nodeSelector: tpl.nodeSelector } : {}),
          ...(tpl.tolerations ? { tolerations: tpl.tolerations as never } : {}),
          ...(tpl.affinity ? { affinity: tpl.affinity as never } : {}),
          ...(tpl.securityContext ? { securityContext: tpl.securityContext as never } : {}),
          ...(tpl.imagePullSecrets ? { imagePullSecrets: tpl.imagePullSecrets } : {}),
          ...(tpl.priorityClassName ? { priorityClassName: tpl.priorityClassName } : {}),
          ...(tpl.priority !== undefined ? { priority: tpl.priority } : {}),
          ...(tmp.volumes.length ? { volumes: tmp.volumes as never } : {}),
          containers: [container],
        },
      },
    },
  };
}

interface ServiceSpecLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  ports?: Array<Record<string, unknown>>;
  clusterIP?: string;
}

/** The Service for an EventSource's webhook ports, when its spec asks for one. */
export function eventSourceService(owner: Owner, obj: RunnableObject): V1Service | undefined {
  const svc = obj.spec.service as ServiceSpecLike | undefined;
  if (!svc?.ports?.length) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(owner, dnsName(`${obj.metadata.name}-eventsource-svc`), 'eventsource', {
      labels: svc.metadata?.labels,
      annotations: svc.metadata?.annotations,
    }),
    spec: {
      selector: selectorLabels(owner, 'eventsource'),
      ports: svc.ports as never,
      ...(svc.clusterIP ? { clusterIP: svc.clusterIP } : {}),
    },
  };
}
