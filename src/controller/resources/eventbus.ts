// Desired children of an EventBus with a managed JetStream server: a Secret with the generated
// credentials (the controller's admin NKey, the route password), a Secret with the nats-server
// config (the bus account and one account slot per role, see src/bus/accounts.ts; per-role NKey
// users with subject permissions; explicit JetStream storage limits; routes with a password and
// mutual TLS; client TLS), when the controller generates TLS a Secret with the server certificate
// (mounted) and a separate Secret with the CA key (never mounted: only the controller reads it),
// a client Service (client port only) and a headless Service (client, cluster and monitor
// ports), a NetworkPolicy (routes only from the bus's own pods, the monitor port only from pods
// labelled sluice.argoproj.io/bus-monitor=true), a StatefulSet (restricted security context,
// default requests/limits, a config reloader sidecar so user and certificate changes apply
// without a restart) and a PodDisruptionBudget. Pure: spec in, objects out.
import type {
  V1NetworkPolicy,
  V1PodDisruptionBudget,
  V1Secret,
  V1Service,
  V1StatefulSet,
  V1Volume,
} from '@kubernetes/client-node';
import type { EventBusSpec } from '../../api/eventbus.ts';
import type { Permissions } from '../../bus/permissions.ts';
import type { BusPki } from '../../bus/pki.ts';
import { busStoreLimits, EPHEMERAL_STORE_SIZE } from '../../bus/placement.ts';
import { natsServerConfig, type TlsFiles } from '../../bus/server-config.ts';
import {
  ANNOTATION_SPEC_HASH,
  childMeta,
  dnsName,
  type Owner,
  selectorLabels,
  specHash,
  withSecurityDefaults,
} from './common.ts';

export const CLIENT_PORT = 4222;
export const CLUSTER_PORT = 6222;
export const MONITOR_PORT = 8222;
/** Keys of the generated credentials Secret. */
export const ADMIN_KEY = 'admin.nkey';
export const ROUTE_PASSWORD_KEY = 'route.password';
/** Key of the account pool size (it only grows) in the credentials Secret. */
export const ACCOUNT_SLOTS_KEY = 'account.slots';
/** Keys of a cert-manager style TLS Secret (and of the CA Secret: ca.crt, ca.key). */
export const TLS_KEYS = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key' } as const;
/** Pods with this label (any namespace) may reach the servers' monitor port. */
export const LABEL_BUS_MONITOR = 'sluice.argoproj.io/bus-monitor';
const CONFIG_FILE = 'nats-js.conf';
const CONFIG_DIR = '/etc/nats-config';
const TLS_DIR = '/etc/nats-tls';
const PID_FILE = '/var/run/nats/nats.pid';
const STORE_DIR = '/data/jetstream/store';
const COMPONENT = 'eventbus';
const ROUTE_USER = 'route';

/** What the reconciler generated once and keeps in the credentials Secret. */
export interface BusSecrets {
  /** NKey seed of the controller's admin user. */
  adminSeed: string;
  adminPublicKey: string;
  routePassword: string;
  /** Account slots the servers declare (absent: never recorded yet). */
  accountSlots?: number;
}

export interface ManagedBusOptions {
  /** nats-server image when `version` is "latest" or unset. */
  defaultImage: string;
  /** Image for a given `version` ("2.12" → "nats:2.12-alpine" by default). */
  imageFor?: (version: string) => string;
  /**
   * Config reloader sidecar image (signals nats-server when its config or certificate changes).
   * Its args are upstream nats-server-config-reloader's (`-pid FILE -config FILE...`).
   */
  reloaderImage: string;
  /**
   * Command of the reloader container; unset: the image's entrypoint. The controller's default is
   * the sluice image with `['sluice', 'nats-reloader']` (bin/nats-reloader).
   */
  reloaderCommand?: string[];
  /** Pull policy of the reloader when the spec's reloaderContainerTemplate sets none. */
  reloaderPullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  secrets: BusSecrets;
  /** Role users (EventSources, Sensors) with their permissions and account slot. */
  users: Array<{ publicKey: string; permissions: Permissions; slot: number }>;
  /** Account slots the servers declare (a change rolls the pods; see src/bus/accounts.ts). */
  accountSlots?: number;
  /** TLS: the Secret to mount, and the material when the controller generated it. Absent: off. */
  tls?: { secretName: string; generated?: BusPki };
}

export interface ManagedBusChildren {
  secret: V1Secret;
  configSecret: V1Secret;
  tlsSecret?: V1Secret;
  /** The generated CA (certificate and key), read only by the controller. */
  caSecret?: V1Secret;
  service: V1Service;
  headlessService: V1Service;
  networkPolicy: V1NetworkPolicy;
  statefulSet: V1StatefulSet;
  pdb: V1PodDisruptionBudget;
}

export function busNames(busName: string) {
  const base = dnsName(`eventbus-${busName}-js`, 50);
  return {
    statefulSet: base,
    secret: `${base}-client-auth`,
    configMap: `${base}-config`,
    config: `${base}-config`,
    tls: `${base}-tls`,
    ca: `${base}-ca`,
    service: `${base}-svc`,
    headless: `${base}-headless`,
    pdb: base,
    networkPolicy: base,
  };
}

/** The URL clients inside the cluster use for a managed bus. */
export function managedBusUrl(owner: Owner): string {
  return `nats://${busNames(owner.name).service}.${owner.namespace}.svc:${CLIENT_PORT}`;
}

/** DNS names the servers are reached by (clients and route peers): for the certificate. */
export function managedBusDnsNames(owner: Owner): string[] {
  const n = busNames(owner.name);
  const ns = owner.namespace;
  return [
    `${n.service}.${ns}.svc`,
    `${n.service}.${ns}.svc.cluster.local`,
    `${n.service}.${ns}`,
    n.service,
    `*.${n.headless}.${ns}.svc`,
    `*.${n.headless}.${ns}.svc.cluster.local`,
  ];
}

/** The nats-server config of a managed bus (pure). */
export function managedBusConfig(owner: Owner, spec: EventBusSpec, opts: ManagedBusOptions): string {
  const js = spec.jetstream;
  if (!js) throw new Error('managedBusConfig needs spec.jetstream');
  const n = busNames(owner.name);
  const replicas = js.replicas ?? 3;
  const store = busStoreLimits(spec);
  const files: TlsFiles | undefined = opts.tls
    ? {
        cert: `${TLS_DIR}/${TLS_KEYS.cert}`,
        key: `${TLS_DIR}/${TLS_KEYS.key}`,
        ca: `${TLS_DIR}/${TLS_KEYS.ca}`,
      }
    : undefined;
  return natsServerConfig({
    serverName: '$POD_NAME',
    listen: `0.0.0.0:${CLIENT_PORT}`,
    monitor: `0.0.0.0:${MONITOR_PORT}`,
    storeDir: STORE_DIR,
    maxPayload: js.maxPayload ?? '1MB',
    pidFile: PID_FILE,
    lameDuck: '30s',
    ...(files ? { clientTls: files } : {}),
    ...(store ? { storage: store } : {}),
    ...(opts.accountSlots ? { accountSlots: opts.accountSlots } : {}),
    users: [
      { nkey: opts.secrets.adminPublicKey },
      ...opts.users.map((u) => ({ nkey: u.publicKey, permissions: u.permissions, slot: u.slot })),
    ],
    ...(replicas > 1
      ? {
          cluster: {
            name: owner.name,
            listen: `0.0.0.0:${CLUSTER_PORT}`,
            peers: Array.from(
              { length: replicas },
              (_, i) => `${n.statefulSet}-${i}.${n.headless}.${owner.namespace}.svc:${CLUSTER_PORT}`,
            ),
            user: ROUTE_USER,
            password: opts.secrets.routePassword,
            ...(files ? { tls: files } : {}),
          },
        }
      : {}),
    ...(js.settings ? { extra: js.settings } : {}),
  });
}

/** The restricted Pod Security Standard for the server pods; the spec's own is laid over it (withSecurityDefaults). */
const POD_SECURITY = {
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  fsGroup: 1000,
  seccompProfile: { type: 'RuntimeDefault' },
};
const CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};
const NATS_RESOURCES = { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } };
const RELOADER_RESOURCES = {
  requests: { cpu: '10m', memory: '16Mi' },
  limits: { cpu: '50m', memory: '64Mi' },
};

export function defaultImageFor(version: string, fallback: string): string {
  if (!version || version === 'latest') return fallback;
  return /^[0-9]+(\.[0-9]+){0,2}$/.test(version) ? `nats:${version}-alpine` : version;
}

export function managedBusChildren(
  owner: Owner,
  spec: EventBusSpec,
  opts: ManagedBusOptions,
): ManagedBusChildren {
  const js = spec.jetstream;
  if (!js) throw new Error('managedBusChildren needs spec.jetstream');
  const n = busNames(owner.name);
  const replicas = js.replicas ?? 3;
  const config = managedBusConfig(owner, spec, opts);
  const labels = selectorLabels(owner, COMPONENT);
  const image = (opts.imageFor ?? ((v) => defaultImageFor(v, opts.defaultImage)))(js.version ?? 'latest');
  // The config and certificates reach running servers through the reloader; only what needs a
  // new pod (image, ports, volumes, the spec's pod fields) rolls it.
  const podAnnotations = {
    ...js.metadata?.annotations,
    [ANNOTATION_SPEC_HASH]: specHash({
      image,
      reloader: [opts.reloaderImage, opts.reloaderCommand],
      tls: !!opts.tls,
      // New accounts need a restart: nats-server does not wire those a reload introduces.
      accountSlots: opts.accountSlots ?? 0,
      js: { ...js, streamConfig: undefined },
    }),
  };

  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(owner, n.secret, COMPONENT),
    type: 'Opaque',
    stringData: {
      [ADMIN_KEY]: opts.secrets.adminSeed,
      [ROUTE_PASSWORD_KEY]: opts.secrets.routePassword,
      ...(opts.accountSlots ? { [ACCOUNT_SLOTS_KEY]: String(opts.accountSlots) } : {}),
    },
  };
  const configSecret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(owner, n.config, COMPONENT),
    type: 'Opaque',
    stringData: { [CONFIG_FILE]: config },
  };
  const g = opts.tls?.generated;
  const tlsSecret: V1Secret | undefined = g
    ? {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: childMeta(owner, n.tls, COMPONENT),
        type: 'Opaque',
        stringData: { [TLS_KEYS.cert]: g.cert, [TLS_KEYS.key]: g.key, [TLS_KEYS.ca]: g.ca },
      }
    : undefined;
  // The CA key signs certificates any route peer or server would trust: it stays out of every pod.
  const caSecret: V1Secret | undefined = g
    ? {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: childMeta(owner, n.ca, COMPONENT),
        type: 'Opaque',
        stringData: { [TLS_KEYS.ca]: g.ca, [TLS_KEYS.caKey]: g.caKey },
      }
    : undefined;

  const clientPort = { name: 'client', port: CLIENT_PORT, targetPort: CLIENT_PORT, protocol: 'TCP' };
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(owner, n.service, COMPONENT),
    spec: { type: 'ClusterIP', selector: labels, ports: [clientPort] },
  };
  const headlessService: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(owner, n.headless, COMPONENT),
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: labels,
      ports: [
        clientPort,
        { name: 'cluster', port: CLUSTER_PORT, targetPort: CLUSTER_PORT, protocol: 'TCP' },
        { name: 'monitor', port: MONITOR_PORT, targetPort: MONITOR_PORT, protocol: 'TCP' },
      ],
    },
  };

  // Only the three files the server needs, whatever else the Secret holds.
  const tlsItems = [TLS_KEYS.cert, TLS_KEYS.key, TLS_KEYS.ca].map((k) => ({ key: k, path: k }));
  const volumes: V1Volume[] = [
    { name: 'config', secret: { secretName: n.config } },
    { name: 'pid', emptyDir: {} },
    ...(opts.tls ? [{ name: 'tls', secret: { secretName: opts.tls.secretName, items: tlsItems } }] : []),
  ];
  // JetStream is told to use 75% of it (busStoreLimits), well before the kubelet would evict.
  if (!js.persistence) volumes.push({ name: 'data', emptyDir: { sizeLimit: EPHEMERAL_STORE_SIZE } });
  const ct = js.containerTemplate;
  const rt = js.reloaderContainerTemplate;
  const configPath = `${CONFIG_DIR}/${CONFIG_FILE}`;
  // Kubernetes' 1 s default timeout fails a server that is busy (catching up a stream, a loaded node).
  const probe = { httpGet: { path: '/healthz?js-enabled-only=true', port: MONITOR_PORT }, timeoutSeconds: 5 };

  const statefulSet: V1StatefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: childMeta(owner, n.statefulSet, COMPONENT),
    spec: {
      replicas,
      serviceName: n.headless,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: labels },
      template: {
        metadata: { labels: { ...js.metadata?.labels, ...labels }, annotations: podAnnotations },
        spec: {
          ...(js.serviceAccountName ? { serviceAccountName: js.serviceAccountName } : {}),
          automountServiceAccountToken: false,
          // The reloader signals nats-server, so the two share a process namespace.
          shareProcessNamespace: true,
          ...(js.nodeSelector ? { nodeSelector: js.nodeSelector } : {}),
          ...(js.tolerations ? { tolerations: js.tolerations as never } : {}),
          ...(js.affinity ? { affinity: js.affinity as never } : {}),
          securityContext: withSecurityDefaults(POD_SECURITY, js.securityContext) as never,
          ...(js.imagePullSecrets ? { imagePullSecrets: js.imagePullSecrets } : {}),
          ...(js.priorityClassName ? { priorityClassName: js.priorityClassName } : {}),
          ...(js.priority !== undefined ? { priority: js.priority } : {}),
          terminationGracePeriodSeconds: 60,
          containers: [
            {
              name: 'nats',
              image,
              ...(ct?.imagePullPolicy ? { imagePullPolicy: ct.imagePullPolicy } : {}),
              args: ['--config', configPath, ...(js.startArgs ?? [])],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                // Keeps the Go heap inside the default memory limit.
                { name: 'GOMEMLIMIT', value: '900MiB' },
              ],
              ports: [
                { name: 'client', containerPort: CLIENT_PORT },
                { name: 'cluster', containerPort: CLUSTER_PORT },
                { name: 'monitor', containerPort: MONITOR_PORT },
              ],
              volumeMounts: [
                { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                { name: 'pid', mountPath: '/var/run/nats' },
                { name: 'data', mountPath: '/data/jetstream' },
                ...(opts.tls ? [{ name: 'tls', mountPath: TLS_DIR, readOnly: true }] : []),
              ],
              startupProbe: { ...probe, periodSeconds: 5, failureThreshold: 60 },
              readinessProbe: { ...probe, periodSeconds: 10 },
              livenessProbe: { ...probe, periodSeconds: 30, failureThreshold: 3 },
              // Lame-duck mode on the way out, so clients move to other servers before this one stops.
              lifecycle: { preStop: { exec: { command: ['nats-server', '--signal', `ldm=${PID_FILE}`] } } },
              resources: (ct?.resources as never) ?? NATS_RESOURCES,
              securityContext: withSecurityDefaults(CONTAINER_SECURITY, ct?.securityContext) as never,
            },
            {
              name: 'reloader',
              image: opts.reloaderImage,
              ...(opts.reloaderCommand ? { command: opts.reloaderCommand } : {}),
              ...((rt?.imagePullPolicy ?? opts.reloaderPullPolicy)
                ? { imagePullPolicy: rt?.imagePullPolicy ?? opts.reloaderPullPolicy }
                : {}),
              args: [
                '-pid',
                PID_FILE,
                '-config',
                configPath,
                ...(opts.tls
                  ? ['-config', `${TLS_DIR}/${TLS_KEYS.cert}`, '-config', `${TLS_DIR}/${TLS_KEYS.ca}`]
                  : []),
              ],
              volumeMounts: [
                { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                { name: 'pid', mountPath: '/var/run/nats' },
                ...(opts.tls ? [{ name: 'tls', mountPath: TLS_DIR, readOnly: true }] : []),
              ],
              resources: (rt?.resources as never) ?? RELOADER_RESOURCES,
              securityContext: withSecurityDefaults(CONTAINER_SECURITY, rt?.securityContext) as never,
            },
          ],
          volumes,
        },
      },
      ...(js.persistence
        ? {
            volumeClaimTemplates: [
              {
                metadata: { name: 'data' },
                spec: {
                  accessModes: [js.persistence.accessMode ?? 'ReadWriteOnce'],
                  ...(js.persistence.storageClassName
                    ? { storageClassName: js.persistence.storageClassName }
                    : {}),
                  resources: { requests: { storage: String(js.persistence.volumeSize ?? '20Gi') } },
                },
              },
            ],
          }
        : {}),
    },
  };

  const networkPolicy = busNetworkPolicy(owner, labels);
  const pdb: V1PodDisruptionBudget = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMeta(owner, n.pdb, COMPONENT),
    spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
  };

  return {
    secret,
    configSecret,
    ...(tlsSecret ? { tlsSecret } : {}),
    ...(caSecret ? { caSecret } : {}),
    service,
    headlessService,
    networkPolicy,
    statefulSet,
    pdb,
  };
}

/**
 * Who may reach the bus pods (pure): clients on the client port from anywhere (TLS and NKeys
 * guard it), routes only from the bus's own pods, the monitor port (connection lists, account
 * details) only from pods labelled sluice.argoproj.io/bus-monitor=true in any namespace. The
 * kubelet's health probes come from the node, which CNIs that enforce NetworkPolicy let through.
 */
export function busNetworkPolicy(owner: Owner, labels: Record<string, string>): V1NetworkPolicy {
  const port = (p: number) => [{ protocol: 'TCP', port: p }];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(owner, busNames(owner.name).networkPolicy, COMPONENT),
    spec: {
      podSelector: { matchLabels: labels },
      policyTypes: ['Ingress'],
      // Wire names ("from"); the client library's model calls the field "_from".
      ingress: [
        { ports: port(CLIENT_PORT) },
        { from: [{ podSelector: { matchLabels: labels } }], ports: port(CLUSTER_PORT) },
        {
          from: [{ namespaceSelector: {}, podSelector: { matchLabels: { [LABEL_BUS_MONITOR]: 'true' } } }],
          ports: port(MONITOR_PORT),
        },
      ] as never,
    },
  };
}
