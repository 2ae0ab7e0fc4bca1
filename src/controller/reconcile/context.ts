// What every reconciler gets: API access, the informer caches, options, the bus operations and
// a clock. Reconcilers are functions of (context, key); all I/O goes through these members.
import type { PodPolicy } from '../../api/pod-policy.ts';
import type { BusLimits } from '../../bus/placement.ts';
import type { BucketSpec } from '../../bus/source-state.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Applier } from '../apply.ts';
import type { Informer } from '../informer.ts';
import type { KubeHttp, KubeMeta, KubeObject } from '../kube-http.ts';

export const BUS_FINALIZER = 'sluice.argoproj.io/eventbus-streams';
/** On a Sensor: its consumers and KV buckets on the bus are deleted before it goes. */
export const SENSOR_FINALIZER = 'sluice.argoproj.io/sensor-state';
/** On an EventSource with bus state (a calendar's last fire): its KV bucket goes with it. */
export const EVENTSOURCE_FINALIZER = 'sluice.argoproj.io/eventsource-state';

/** How the controller reaches a bus to manage its streams (credential resolved from the Secret). */
export interface BusConnection {
  namespace: string;
  busName: string;
  url: string;
  credential?: string;
  streamConfig?: string;
  tls?: { insecureSkipVerify?: boolean; ca?: string; cert?: string; key?: string };
  /** Copies of everything the bus stores (busReplicas): streams, DLQ, KV buckets. */
  replicas: number;
  /** How much each stream and bucket may hold (busLimits; absent: the streamConfig's own). */
  limits?: BusLimits;
}

/** A Sensor's dependencies, as far as its bus state goes. */
export interface SensorStateRef {
  name: string;
  dependencies: Array<{ name: string; eventSourceName: string; eventName: string }>;
  /** max_deliver of its consumers (sensorMaxDeliver of the spec). */
  maxDeliver?: number;
}

/** What the bus monitor saw: drops since the previous look. */
export interface DropReport {
  dropped: number;
  reason?: string;
}

export interface StreamOutcome {
  ok: boolean;
  /** Why not, or what was changed, for the StreamReady condition. */
  reason: string;
  message: string;
}

/** What the bus monitor tells the controller besides its logs and metrics. */
export interface MonitorHooks {
  /** New dead-letter records since the previous look, by Sensor name. */
  deadLettered?(bySensor: Map<string, number>): void;
}

/** Stream and consumer management the reconcilers need from the bus layer. */
export interface BusOperations {
  ensureStreams(conn: BusConnection): Promise<StreamOutcome>;
  deleteStreams(conn: BusConnection): Promise<void>;
  /** Deletes consumers and KV state of a Sensor's dependencies/triggers that are gone. */
  pruneSensorState(
    conn: BusConnection,
    sensor: { namespace: string; name: string },
    keep: { dependencies: string[]; triggers: string[] },
  ): Promise<{ removed: string[] }>;
  /** Creates (or brings in line) a Sensor's consumers and KV buckets. */
  provisionSensor(conn: BusConnection, sensor: SensorStateRef): Promise<{ consumers: string[] }>;
  /** Deletes all of a Sensor's consumers and KV buckets; returns what was removed. */
  deleteSensorState(conn: BusConnection, sensor: string): Promise<string[]>;
  /** Creates KV buckets an EventSource keeps state in ([] : none). */
  provisionEventSource(conn: BusConnection, eventSource: string, buckets: BucketSpec[]): Promise<void>;
  /** Deletes an EventSource's KV buckets; returns what was removed. */
  deleteEventSourceState(conn: BusConnection, eventSource: string): Promise<string[]>;
  /** Deletes consumers on the bus's stream whose Sensor is not in `live`. */
  deleteOrphanConsumers(conn: BusConnection, live: ReadonlySet<string>): Promise<string[]>;
  /**
   * Deletes KV buckets of the bus's namespace on its server whose Sensor/EventSource is not in
   * `live` (older than a minute; see bus/orphan-state.ts). Returns the streams removed.
   */
  deleteOrphanBuckets?(
    conn: BusConnection,
    live: { sensors: Iterable<string>; eventSources: Iterable<string> },
  ): Promise<string[]>;
  /**
   * Watches the bus's event stream for drops (every few seconds, until `unmonitor`): each is
   * logged and counted. Idempotent; a changed connection replaces the previous watch.
   */
  monitor(conn: BusConnection, hooks?: MonitorHooks): void;
  unmonitor(conn: Pick<BusConnection, 'namespace' | 'busName'>): void;
  close(): Promise<void>;
}

export interface ControllerOptions {
  /** Image of the sluice runtime (EventSource/Sensor Deployments). */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** nats-server image for managed buses with version "latest". */
  natsImage: string;
  /** Config reloader sidecar image of managed buses (default: `image`, running `sluice nats-reloader`). */
  natsReloaderImage?: string;
  /** Log level handed to runtime pods. */
  runtimeLogLevel?: string;
  /**
   * Which pod settings of the objects' templates the controller copies into their pods (none of
   * the privileged, hostPath, volumes, root and runtime ones by default; never its own ServiceAccount).
   * An object asking for more is not deployed: `Deployed=False`, reason `PodSettingRefused`.
   */
  podPolicy?: PodPolicy;
  /**
   * Put sluice's finalizers on objects (default true). false (`--namespaced`: the controller's
   * rights are a Role in the namespace it manages, deleted with it) puts none, removes any an
   * earlier controller left, and cleans an object's bus state when its deletion is seen instead
   * (see deleted.ts).
   */
  finalizers?: boolean;
}

export interface SluiceObject extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: KubeMeta;
  spec?: Record<string, unknown>;
  status?: { conditions?: Array<import('../../api/common.ts').Condition>; [k: string]: unknown };
}

export interface ReconcileContext {
  http: KubeHttp;
  applier: Applier;
  log: Logger;
  now: () => Date;
  options: ControllerOptions;
  bus: BusOperations;
  caches: {
    buses: Informer<SluiceObject>;
    sources: Informer<SluiceObject>;
    sensors: Informer<SluiceObject>;
    /** sluice's children by kind (metadata only), to skip a GET before applying what is ours. */
    children?: Map<string, Informer<SluiceObject>>;
    /** Workloads of another controller (Argo Events' `controller` label), metadata only. */
    foreign?: Informer<SluiceObject>[];
  };
  /** Kubernetes Events (absent in tests that do not look at them). */
  events?: EventRecorder;
  /** Version (generation or resourceVersion) each child had after our last apply, by kind/ns/name. */
  appliedVersions?: Map<string, string>;
  /**
   * Set while the sluice CRDs are being deleted (uninstall): finalizers make one bounded attempt to
   * clean bus state and then go, so the CRDs and namespaces are not held.
   */
  uninstalling?: () => string | undefined;
  /**
   * The last connection used for each bus, by `namespace/name`: the state of its users can still
   * be cleaned when the bus object is already gone (uninstall, namespace deletion).
   */
  knownBuses?: Map<string, KnownBus>;
  /** Objects seen deleted without a finalizer whose bus state is still to clean, by `Kind/ns/name`. */
  deleted?: Map<string, Tombstone>;
  /** Buses (by uid) whose server was swept for orphaned KV buckets since this process started. */
  swept?: Set<string>;
}

/** A bus as last reached: its uid, whether sluice runs it (spec.jetstream) and the connection. */
export interface KnownBus {
  uid: string;
  managed: boolean;
  conn: BusConnection;
}

/** The last known state of an object deleted without sluice's finalizer, and its bus then. */
export interface Tombstone {
  obj: SluiceObject;
  /** The bus it used (for an EventBus: itself) as known when its deletion was seen. */
  bus?: KnownBus;
  /** When the deletion was seen (ms since epoch). */
  seenAt: number;
  /** A deleted EventBus waiting for its users to go (logged once). */
  waiting?: boolean;
}

/** The EventBus name an EventSource/Sensor uses ("default" when unset). */
export function busNameOf(obj: SluiceObject): string {
  const name = (obj.spec as { eventBusName?: unknown } | undefined)?.eventBusName;
  return typeof name === 'string' && name ? name : 'default';
}

export function ownerOf(obj: SluiceObject) {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind as 'EventBus' | 'EventSource' | 'Sensor',
    name: obj.metadata.name ?? '',
    namespace: obj.metadata.namespace ?? 'default',
    uid: obj.metadata.uid ?? '',
  };
}

/** How long one clean-up attempt may take while the CRDs are being deleted. */
export const UNINSTALL_ATTEMPT_MS = 5_000;

/** `p`, or a rejection after `ms` (the work itself is not cancelled; it ends on its own timeouts). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
