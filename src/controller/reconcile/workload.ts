// EventSource and Sensor reconcilers: validate the spec, find the EventBus, run a Deployment of
// `sluice eventsource|sensor` (and a Service for webhook ports), prune children that are no
// longer wanted, and report conditions. A missing or unready bus is a condition, not an error:
// the bus's own events requeue its users.
import type { V1Deployment } from '@kubernetes/client-node';
import type { z } from 'zod';
import { EventBusSpec } from '../../api/eventbus.ts';
import { EventSourceSpec, SOURCE_TYPES } from '../../api/eventsource.ts';
import { SensorSpec, TRIGGER_TYPES } from '../../api/sensor.ts';
import { streamConfigDuplicatesMs } from '../../api/stream-config.ts';
import { formatPath } from '../../api/validate.ts';
import { sensorMaxDeliver } from '../../bus/consumer.ts';
import { inboxPrefixFor } from '../../bus/permissions.ts';
import { eventSourceBucketSpecs } from '../../bus/source-state.ts';
import { SUPPORTED_SOURCE_TYPES } from '../../eventsources/supported.ts';
import { SUPPORTED_TRIGGER_TYPES } from '../../sensors/supported.ts';
import { type ConditionInput, withReady } from '../conditions.ts';
import { type KubeObject, splitKey } from '../kube-http.ts';
import { LABEL_OWNER_NAME } from '../resources/common.ts';
import {
  deploymentFor,
  eventSourceService,
  type RuntimeBus,
  type WorkloadOptions,
  workloadName,
} from '../resources/workload.ts';
import type { ReconcileResult } from '../workqueue.ts';
import { CREDENTIAL_KEY, credentialSecretName, publicKeyOf, readSecret } from './bus-security.ts';
import { applyChild, emitEvent, foreignChildren } from './children.ts';
import {
  type BusConnection,
  busNameOf,
  EVENTSOURCE_FINALIZER,
  ownerOf,
  type ReconcileContext,
  SENSOR_FINALIZER,
  type SluiceObject,
  UNINSTALL_ATTEMPT_MS,
  within,
} from './context.ts';
import { cleanDeleted, dropFinalizers, finalizersOff, goneBusConnection } from './deleted.ts';
import { busConnection } from './eventbus.ts';
import { podPolicyBlock } from './pod-policy.ts';
import {
  availableCell,
  busBlocks,
  busReadiness,
  type DeploymentLike,
  workloadAvailability,
} from './readiness.ts';
import { ownDeployment, standDown } from './stand-down.ts';
import { writeStatus } from './status.ts';

function firstIssue(err: z.ZodError): string {
  const i = err.issues[0];
  return i ? `spec.${formatPath(i.path)}: ${i.message}` : 'invalid spec';
}

type SecretRef = { name?: string; key: string };
interface BusStatus {
  config?: {
    jetstream?: {
      url?: string;
      accessSecret?: SecretRef;
      streamConfig?: string;
      tls?: {
        caCertSecret?: SecretRef;
        clientCertSecret?: SecretRef;
        clientKeySecret?: SecretRef;
        insecureSkipVerify?: boolean;
      };
    };
  };
  conditions?: Array<{ type: string; status: string }>;
}

const ref = (r: SecretRef | undefined) => (r?.name ? { name: r.name, key: r.key } : undefined);

interface FoundBus {
  bus?: RuntimeBus;
  credential?: { name: string; key: string };
  tlsSecrets?: WorkloadOptions['busTlsSecrets'];
  /** A managed bus: each workload has its own NKey credential and permissions. */
  managed?: boolean;
  problem?: ConditionInput;
}

/** Why nothing runs while `obj`'s bus is not Ready, in the words of its `EventBusReady` condition. */
function busCause(ctx: ReconcileContext, obj: SluiceObject): ConditionInput | undefined {
  const namespace = obj.metadata.namespace ?? 'default';
  const name = busNameOf(obj);
  return busBlocks(ctx.caches.buses.get(`${namespace}/${name}`), name, namespace);
}

/** Finds the bus of `obj` and what runtimes need to reach it, or a condition saying why not. */
function busFor(ctx: ReconcileContext, obj: SluiceObject): FoundBus {
  const namespace = obj.metadata.namespace ?? 'default';
  const name = busNameOf(obj);
  const bus = ctx.caches.buses.get(`${namespace}/${name}`);
  const js = (bus?.status as BusStatus | undefined)?.config?.jetstream;
  if (!bus || !js?.url)
    return {
      problem: busCause(ctx, obj) ?? {
        type: 'Deployed',
        status: 'Unknown',
        reason: 'EventBusNotReady',
        message: `EventBus "${name}" has no URL in its status yet`,
      },
    };
  const managed = !!(bus.spec as { jetstream?: unknown } | undefined)?.jetstream;
  const role = obj.kind === 'Sensor' ? 'sensor' : 'eventsource';
  const tlsSecrets = {
    ...(ref(js.tls?.caCertSecret) ? { ca: ref(js.tls?.caCertSecret)! } : {}),
    ...(ref(js.tls?.clientCertSecret) ? { cert: ref(js.tls?.clientCertSecret)! } : {}),
    ...(ref(js.tls?.clientKeySecret) ? { key: ref(js.tls?.clientKeySecret)! } : {}),
  };
  return {
    managed,
    bus: {
      busName: name,
      namespace,
      url: js.url,
      ...(js.streamConfig ? { streamConfig: js.streamConfig } : {}),
      ...(js.tls?.insecureSkipVerify ? { tls: { insecureSkipVerify: true } } : {}),
      ...(managed ? { inboxPrefix: inboxPrefixFor(role, namespace, obj.metadata.name ?? '') } : {}),
    },
    ...(Object.keys(tlsSecrets).length ? { tlsSecrets } : {}),
    // On a managed bus every workload has its own credential (made by the bus reconcile).
    ...(managed
      ? { credential: { name: credentialSecretName(obj), key: CREDENTIAL_KEY } }
      : js.accessSecret?.name
        ? { credential: { name: js.accessSecret.name, key: js.accessSecret.key } }
        : {}),
  };
}

/** Deletes owned children of `obj` of the given kind that are not in `keep`. */
async function pruneChildren(
  ctx: ReconcileContext,
  obj: SluiceObject,
  apiVersion: string,
  kind: string,
  collection: string,
  keep: Set<string>,
): Promise<void> {
  const ns = obj.metadata.namespace ?? 'default';
  const list = await ctx.http.request<{ items: SluiceObject[] }>(
    'GET',
    `${collection.replace(/\/([a-z]+)$/, `/namespaces/${ns}/$1`)}`,
    { query: { labelSelector: `${LABEL_OWNER_NAME}=${obj.metadata.name}` }, timeoutMs: 30_000 },
  );
  for (const child of list.items ?? []) {
    const owned = child.metadata.ownerReferences?.some((r) => r.uid === obj.metadata.uid && r.controller);
    if (owned && !keep.has(child.metadata.name ?? '')) {
      await ctx.applier.delete({ apiVersion, kind, metadata: { name: child.metadata.name, namespace: ns } });
    }
  }
}

function unsupported(
  kind: 'source' | 'trigger',
  used: string[],
  supported: ReadonlySet<string>,
): ConditionInput {
  const missing = used.filter((t) => !supported.has(t));
  const type = kind === 'source' ? 'SourcesSupported' : 'TriggersSupported';
  return missing.length
    ? {
        type,
        status: 'False',
        reason: kind === 'source' ? 'UnsupportedSourceType' : 'UnsupportedTriggerType',
        message: `accepted but not run by this sluice build yet: ${[...new Set(missing)].sort().join(', ')}`,
      }
    : { type, status: 'True', reason: 'Supported', message: '' };
}

async function deploy(
  ctx: ReconcileContext,
  obj: SluiceObject,
  spec: Record<string, unknown>,
  prepare?: () => Promise<ConditionInput | undefined>,
): Promise<{ condition: ConditionInput; requeueAfterMs?: number; deployment?: DeploymentLike }> {
  const foreign = foreignChildren(ctx, obj);
  if (foreign) return standDown(ctx, obj, foreign);
  const found = busFor(ctx, obj);
  if (!found.bus) return { condition: found.problem!, requeueAfterMs: 30_000 };
  // Its own credential on a managed bus: the pod rolls when it is rotated (public key in the hash).
  let credentialVersion: string | undefined;
  if (found.managed && found.credential) {
    const seed = (await readSecret(ctx, obj.metadata.namespace ?? 'default', found.credential.name))?.[
      CREDENTIAL_KEY
    ];
    credentialVersion = publicKeyOf(seed);
    if (!credentialVersion)
      return {
        condition: {
          type: 'Deployed',
          status: 'False',
          reason: 'BusCredentialPending',
          message: `waiting for the EventBus to issue this object's bus credential (Secret ${found.credential.name})`,
        },
        requeueAfterMs: 5_000,
      };
  }
  // Bus state the workload binds to is created before it runs.
  const problem = await prepare?.();
  if (problem) return { condition: problem, requeueAfterMs: 15_000 };
  const owner = ownerOf(obj);
  const runnable = {
    apiVersion: obj.apiVersion,
    kind: obj.kind as 'EventSource' | 'Sensor',
    metadata: {
      name: obj.metadata.name ?? '',
      namespace: obj.metadata.namespace ?? 'default',
      uid: obj.metadata.uid ?? '',
      labels: obj.metadata.labels,
    },
    spec: spec as never,
  };
  const deployment = deploymentFor(owner, runnable, {
    image: ctx.options.image,
    ...(ctx.options.imagePullPolicy ? { imagePullPolicy: ctx.options.imagePullPolicy } : {}),
    bus: { ...found.bus, ...(prepare ? { provisioned: true } : {}) },
    ...(found.credential ? { busCredential: found.credential } : {}),
    ...(found.tlsSecrets ? { busTlsSecrets: found.tlsSecrets } : {}),
    ...(credentialVersion ? { busCredentialVersion: credentialVersion } : {}),
    ...(ctx.options.runtimeLogLevel ? { logLevel: ctx.options.runtimeLogLevel } : {}),
  });
  const applied = await applyChild<DeploymentLike & KubeObject>(ctx, obj, deployment, {
    retryAfter: (err) => dropRollingUpdate(ctx, deployment, err),
  });
  if (!applied.ok) return childConflict(applied.conflict);
  const keepServices = new Set<string>();
  if (obj.kind === 'EventSource') {
    const svc = eventSourceService(owner, runnable);
    if (svc) {
      const s = await applyChild(ctx, obj, svc);
      if (!s.ok) return childConflict(s.conflict);
      keepServices.add(svc.metadata!.name!);
    }
    await pruneChildren(ctx, obj, 'v1', 'Service', '/api/v1/services', keepServices);
  }
  return {
    condition: {
      type: 'Deployed',
      status: 'True',
      reason: 'Deployed',
      message: `Deployment ${workloadName(obj as { kind: string; metadata: { name: string } })} applied`,
    },
    deployment: applied.object,
  };
}

const childConflict = (message: string) => ({
  condition: { type: 'Deployed', status: 'False', reason: 'ChildConflict', message } as ConditionInput,
  requeueAfterMs: 60_000,
});

/**
 * The connection to the bus of `obj` when it is a JetStream bus we know, else undefined. A bus
 * object already gone (deleted beside its users by an uninstall or without finalizers) is reached
 * with the last connection used for it, when it is an existing server.
 */
async function stateBus(ctx: ReconcileContext, obj: SluiceObject): Promise<BusConnection | undefined> {
  const bus = ctx.caches.buses.get(`${obj.metadata.namespace}/${busNameOf(obj)}`);
  if (!bus) return goneBusConnection(ctx, obj.metadata.namespace ?? 'default', busNameOf(obj));
  const busSpec = bus && EventBusSpec.safeParse(bus.spec ?? {});
  if (!busSpec?.success || !(busSpec.data.jetstream || busSpec.data.jetstreamExotic)) return undefined;
  return busConnection(ctx, bus, busSpec.data);
}

/** True when `obj`'s bus is a managed one (spec.jetstream) that is being deleted itself. */
function managedBusGoing(ctx: ReconcileContext, obj: SluiceObject): boolean {
  const bus = ctx.caches.buses.get(`${obj.metadata.namespace}/${busNameOf(obj)}`);
  return !!bus?.metadata.deletionTimestamp && !!(bus.spec as { jetstream?: unknown } | undefined)?.jetstream;
}

/** Give up cleaning bus state of a deleted object after this long (the bus may be gone for good). */
const CLEANUP_GIVE_UP_MS = 10 * 60_000;

/**
 * A deleted object with `finalizer`: removes its bus state (`clean`), then the finalizer. A bus
 * that is gone has nothing to clean; one that cannot be reached is retried for a while.
 */
async function finalize(
  ctx: ReconcileContext,
  obj: SluiceObject,
  finalizer: string,
  clean: (conn: BusConnection) => Promise<string[]>,
): Promise<ReconcileResult | undefined> {
  if (!obj.metadata.finalizers?.includes(finalizer)) return;
  const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
  const leaving = ctx.uninstalling?.();
  try {
    const conn = await stateBus(ctx, obj);
    if (conn) {
      const removed = leaving
        ? await within(clean(conn), UNINSTALL_ATTEMPT_MS, 'removing bus state')
        : await clean(conn);
      ctx.log.info({ object: `${obj.kind}/${key}`, removed }, 'removed bus state');
    }
  } catch (err) {
    const since = Date.parse(String(obj.metadata.deletionTimestamp ?? '')) || ctx.now().getTime();
    if (leaving) {
      ctx.log.warn(
        { object: `${obj.kind}/${key}`, err: (err as Error).message, why: leaving },
        'uninstalling: could not remove its bus state in one attempt; it stays on the bus',
      );
    } else if (managedBusGoing(ctx, obj)) {
      // Deleting a namespace deletes the bus's pods, Secrets and volumes beside this object: the
      // state is gone with the store, and waiting would hold the namespace for the give-up time.
      ctx.log.warn(
        { object: `${obj.kind}/${key}`, err: (err as Error).message },
        'its managed EventBus is being deleted and cannot be reached; its state goes with the bus',
      );
    } else if (ctx.now().getTime() - since < CLEANUP_GIVE_UP_MS) {
      ctx.log.warn(
        { object: `${obj.kind}/${key}`, err: (err as Error).message },
        'cannot remove bus state yet; retrying',
      );
      return { requeueAfterMs: 10_000 };
    }
    ctx.log.error(
      { object: `${obj.kind}/${key}`, err: (err as Error).message },
      'gave up removing bus state; the EventBus reconcile removes orphan consumers when it can reach the bus',
    );
  }
  await ctx.applier.setFinalizers(
    obj,
    (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer),
  );
  return;
}

async function ensureFinalizer(ctx: ReconcileContext, obj: SluiceObject, finalizer: string): Promise<void> {
  if (finalizersOff(ctx)) return;
  if (!obj.metadata.finalizers?.includes(finalizer))
    await ctx.applier.setFinalizers(obj, [...(obj.metadata.finalizers ?? []), finalizer]);
}

const stateProblem = (err: unknown): ConditionInput => ({
  type: 'Deployed',
  status: 'False',
  reason: 'BusStateNotReady',
  message: `cannot create its consumers/KV buckets on the bus yet: ${(err as Error).message}`,
});

export async function reconcileEventSource(
  ctx: ReconcileContext,
  key: string,
): Promise<ReconcileResult | undefined> {
  const obj = ctx.caches.sources.get(key);
  const gone = await cleanDeleted(ctx, 'EventSource', key, obj);
  if (!obj) return gone;
  await dropFinalizers(ctx, obj);
  if (obj.metadata.deletionTimestamp)
    return finalize(ctx, obj, EVENTSOURCE_FINALIZER, (conn) =>
      ctx.bus.deleteEventSourceState(conn, obj.metadata.name ?? ''),
    );
  const parsed = EventSourceSpec.safeParse(obj.spec ?? {});
  if (!parsed.success) {
    emitEvent(ctx, obj, 'Warning', 'InvalidSpec', 'Reconcile', firstIssue(parsed.error));
    await writeStatus(
      ctx,
      obj,
      withReady([
        {
          type: 'SourcesProvided',
          status: 'False',
          reason: 'InvalidSpec',
          message: firstIssue(parsed.error),
        },
      ]),
    );
    return;
  }
  const spec = parsed.data as Record<string, unknown>;
  const used = SOURCE_TYPES.filter((t) => {
    const m = spec[t];
    return m && typeof m === 'object' && Object.keys(m).length > 0;
  });
  const conditions: ConditionInput[] = [
    { type: 'SourcesProvided', status: 'True', reason: 'Provided', message: `${used.join(', ')}` },
  ];
  const blocked = podPolicyBlock(ctx, obj);
  if (blocked) {
    conditions.push(blocked, unsupported('source', used, SUPPORTED_SOURCE_TYPES));
    await report(ctx, obj, conditions, undefined);
    return;
  }
  const d = await deploy(ctx, obj, obj.spec ?? {}, async () => {
    try {
      const conn = await stateBus(ctx, obj);
      if (!conn) return undefined;
      const buckets = eventSourceBucketSpecs(
        obj.metadata.namespace ?? 'default',
        obj.metadata.name ?? '',
        spec,
        streamConfigDuplicatesMs(conn.streamConfig),
      );
      if (buckets.length) await ensureFinalizer(ctx, obj, EVENTSOURCE_FINALIZER);
      await ctx.bus.provisionEventSource(conn, obj.metadata.name ?? '', buckets);
      return undefined;
    } catch (err) {
      return stateProblem(err);
    }
  });
  conditions.push(d.condition, unsupported('source', used, SUPPORTED_SOURCE_TYPES));
  await report(ctx, obj, conditions, d.deployment);
  return d.requeueAfterMs ? { requeueAfterMs: d.requeueAfterMs } : undefined;
}

/**
 * Writes status: the object's own conditions, its bus's readiness and its Deployment's availability,
 * with Ready their conjunction, `eventBusName` (the implicit "default" included) for the BUS column
 * and `available` (`1/1`, `-`) for the AVAILABLE one. Every False condition but availability (which
 * a rollout passes through) is also a Warning event, once per reason and text (a missing bus is
 * both `Deployed` and `EventBusReady`), deduplicated across reconciles by the recorder.
 */
async function report(
  ctx: ReconcileContext,
  obj: SluiceObject,
  own: ConditionInput[],
  deployment: DeploymentLike | undefined,
): Promise<void> {
  const bus = busNameOf(obj);
  const namespace = obj.metadata.namespace ?? 'default';
  // Not applied this time (bus not ready, another controller, ...): the one that runs, if any.
  const current = deployment ?? (await ownDeployment(ctx, obj));
  // The bus before Deployed: Ready (and the REASON column) names the cause, e.g. a bus that is
  // BusUnreachable rather than the consumers that could not be made on it.
  const at = own.findIndex((c) => c.type === 'Deployed');
  const all = [...own, workloadAvailability(current)];
  all.splice(
    at < 0 ? own.length : at,
    0,
    busReadiness(ctx.caches.buses.get(`${namespace}/${bus}`), bus, namespace),
  );
  const told = new Set<string>();
  for (const c of all) {
    const note = c.message || c.reason;
    if (c.status !== 'False' || c.type === 'Available' || told.has(`${c.reason}|${note}`)) continue;
    told.add(`${c.reason}|${note}`);
    emitEvent(ctx, obj, 'Warning', c.reason, 'Reconcile', note);
  }
  await writeStatus(ctx, obj, withReady(all), { eventBusName: bus, available: availableCell(current) });
}

interface SensorSpecLike {
  dependencies?: Array<{ name: string; eventSourceName: string; eventName: string }>;
  triggers?: Array<{ template?: Record<string, unknown> & { name?: string } }>;
}

export async function reconcileSensor(
  ctx: ReconcileContext,
  key: string,
): Promise<ReconcileResult | undefined> {
  const obj = ctx.caches.sensors.get(key);
  const gone = await cleanDeleted(ctx, 'Sensor', key, obj);
  if (!obj) return gone;
  await dropFinalizers(ctx, obj);
  if (obj.metadata.deletionTimestamp)
    return finalize(ctx, obj, SENSOR_FINALIZER, (conn) =>
      ctx.bus.deleteSensorState(conn, obj.metadata.name ?? ''),
    );
  const parsed = SensorSpec.safeParse(obj.spec ?? {});
  if (!parsed.success) {
    const msg = firstIssue(parsed.error);
    emitEvent(ctx, obj, 'Warning', 'InvalidSpec', 'Reconcile', msg);
    const onTriggers = parsed.error.issues[0]?.path[0] === 'triggers';
    await writeStatus(
      ctx,
      obj,
      withReady([
        {
          type: onTriggers ? 'TriggersProvided' : 'DependenciesProvided',
          status: 'False',
          reason: 'InvalidSpec',
          message: msg,
        },
      ]),
    );
    return;
  }
  const spec = parsed.data as SensorSpecLike;
  const deps = (spec.dependencies ?? []).map((d) => d.name);
  const triggers = spec.triggers ?? [];
  const usedTypes = triggers.flatMap((t) => TRIGGER_TYPES.filter((k) => t.template?.[k] !== undefined));
  const conditions: ConditionInput[] = [
    deps.length
      ? {
          type: 'DependenciesProvided',
          status: 'True',
          reason: 'Provided',
          message: `${deps.length} dependencies`,
        }
      : {
          type: 'DependenciesProvided',
          status: 'False',
          reason: 'NoDependencies',
          message: 'spec.dependencies is empty',
        },
    triggers.length
      ? {
          type: 'TriggersProvided',
          status: 'True',
          reason: 'Provided',
          message: `${triggers.length} triggers`,
        }
      : {
          type: 'TriggersProvided',
          status: 'False',
          reason: 'NoTriggers',
          message: 'spec.triggers is empty',
        },
  ];
  const blocked = podPolicyBlock(ctx, obj);
  if (blocked) {
    conditions.push(blocked, unsupported('trigger', usedTypes, SUPPORTED_TRIGGER_TYPES));
    await report(ctx, obj, conditions, undefined);
    return;
  }
  // Its consumers and KV buckets exist before it runs (and before it is deployed), owned by the
  // controller: the finalizer deletes them with the Sensor.
  const d = await deploy(ctx, obj, obj.spec ?? {}, async () => {
    try {
      const conn = await stateBus(ctx, obj);
      if (!conn) return undefined;
      await ensureFinalizer(ctx, obj, SENSOR_FINALIZER);
      await ctx.bus.provisionSensor(conn, {
        name: obj.metadata.name ?? '',
        dependencies: spec.dependencies ?? [],
        maxDeliver: sensorMaxDeliver(parsed.data),
      });
      return undefined;
    } catch (err) {
      return stateProblem(err);
    }
  });
  conditions.push(d.condition, unsupported('trigger', usedTypes, SUPPORTED_TRIGGER_TYPES));

  // Consumers and KV state of dependencies/triggers that were removed from the spec.
  try {
    const conn = await stateBus(ctx, obj);
    const { removed } = conn
      ? await ctx.bus.pruneSensorState(
          conn,
          { namespace: obj.metadata.namespace ?? 'default', name: obj.metadata.name ?? '' },
          { dependencies: deps, triggers: triggers.map((t) => t.template?.name ?? '') },
        )
      : { removed: [] };
    if (removed.length)
      ctx.log.info({ sensor: key, removed }, 'removed state of deleted dependencies/triggers');
  } catch (err) {
    ctx.log.debug(
      { sensor: key, err: (err as Error).message },
      'bus not reachable for state cleanup; will retry',
    );
  }
  await report(ctx, obj, conditions, d.deployment);
  return d.requeueAfterMs ? { requeueAfterMs: d.requeueAfterMs } : undefined;
}

/**
 * Server-side apply of a Deployment. A switch to `Recreate` (a Sensor going to one replica, or a
 * Deployment made before Sensors used it) first drops the rollingUpdate settings the API server
 * defaulted: Recreate forbids them, and an apply cannot remove a field it does not own.
 */
/**
 * Switching to Recreate first drops the API server's defaulted rollingUpdate (apply cannot remove
 * a field it does not own): true when that was the error and the field is now gone.
 */
async function dropRollingUpdate(ctx: ReconcileContext, d: V1Deployment, err: unknown): Promise<boolean> {
  if (d.spec?.strategy?.type !== 'Recreate' || !/rollingUpdate/.test((err as Error).message)) return false;
  await ctx.applier.mergePatch(d, { spec: { strategy: { type: 'Recreate', rollingUpdate: null } } });
  return true;
}

export { splitKey };
