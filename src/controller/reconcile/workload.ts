// EventSource and Sensor reconcilers: validate the spec, find the EventBus, run a Deployment of
// `sluice eventsource|sensor` (and a Service for webhook ports), prune children that are no
// longer wanted, and report conditions. A missing or unready bus is a condition, not an error:
// the bus's own events requeue its users.
import type { z } from 'zod';
import { EventBusSpec } from '../../api/eventbus.ts';
import { EventSourceSpec, SOURCE_TYPES } from '../../api/eventsource.ts';
import { SensorSpec, TRIGGER_TYPES } from '../../api/sensor.ts';
import { formatPath } from '../../api/validate.ts';
import { SUPPORTED_SOURCE_TYPES } from '../../eventsources/supported.ts';
import { SUPPORTED_TRIGGER_TYPES } from '../../sensors/supported.ts';
import { type ConditionInput, withReady } from '../conditions.ts';
import { splitKey } from '../kube-http.ts';
import { LABEL_OWNER_NAME } from '../resources/common.ts';
import { deploymentFor, eventSourceService, type RuntimeBus, workloadName } from '../resources/workload.ts';
import type { ReconcileResult } from '../workqueue.ts';
import { busNameOf, ownerOf, type ReconcileContext, type SluiceObject } from './context.ts';
import { busConnection } from './eventbus.ts';
import { writeStatus } from './status.ts';

function firstIssue(err: z.ZodError): string {
  const i = err.issues[0];
  return i ? `spec.${formatPath(i.path)}: ${i.message}` : 'invalid spec';
}

interface BusStatus {
  config?: {
    jetstream?: { url?: string; accessSecret?: { name?: string; key: string }; streamConfig?: string };
  };
  conditions?: Array<{ type: string; status: string }>;
}

/** Finds the bus of `obj` and what runtimes need to reach it, or a condition saying why not. */
function busFor(
  ctx: ReconcileContext,
  obj: SluiceObject,
): { bus?: RuntimeBus; credential?: { name: string; key: string }; problem?: ConditionInput } {
  const namespace = obj.metadata.namespace ?? 'default';
  const name = busNameOf(obj);
  const bus = ctx.caches.buses.get(`${namespace}/${name}`);
  if (!bus) {
    return {
      problem: {
        type: 'Deployed',
        status: 'False',
        reason: 'EventBusNotFound',
        message: `EventBus "${name}" does not exist in namespace ${namespace}; create it (or set spec.eventBusName)`,
      },
    };
  }
  const js = (bus.status as BusStatus | undefined)?.config?.jetstream;
  if (!js?.url) {
    return {
      problem: {
        type: 'Deployed',
        status: 'False',
        reason: 'EventBusNotReady',
        message: `EventBus "${name}" has no connection details yet; see its status`,
      },
    };
  }
  return {
    bus: {
      busName: name,
      namespace,
      url: js.url,
      ...(js.streamConfig ? { streamConfig: js.streamConfig } : {}),
    },
    ...(js.accessSecret?.name
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
): Promise<{ condition: ConditionInput; requeueAfterMs?: number }> {
  const found = busFor(ctx, obj);
  if (!found.bus) return { condition: found.problem!, requeueAfterMs: 30_000 };
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
    bus: found.bus,
    ...(found.credential ? { busCredential: found.credential } : {}),
    ...(ctx.options.runtimeLogLevel ? { logLevel: ctx.options.runtimeLogLevel } : {}),
  });
  await ctx.applier.apply(deployment);
  const keepServices = new Set<string>();
  if (obj.kind === 'EventSource') {
    const svc = eventSourceService(owner, runnable);
    if (svc) {
      await ctx.applier.apply(svc);
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
  };
}

export async function reconcileEventSource(
  ctx: ReconcileContext,
  key: string,
): Promise<ReconcileResult | undefined> {
  const obj = ctx.caches.sources.get(key);
  if (!obj || obj.metadata.deletionTimestamp) return; // children go with their owner (garbage collection)
  const parsed = EventSourceSpec.safeParse(obj.spec ?? {});
  if (!parsed.success) {
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
  const d = await deploy(ctx, obj, obj.spec ?? {});
  conditions.push(d.condition, unsupported('source', used, SUPPORTED_SOURCE_TYPES));
  await writeStatus(ctx, obj, withReady(conditions));
  return d.requeueAfterMs ? { requeueAfterMs: d.requeueAfterMs } : undefined;
}

interface SensorSpecLike {
  dependencies?: Array<{ name: string }>;
  triggers?: Array<{ template?: Record<string, unknown> & { name?: string } }>;
}

export async function reconcileSensor(
  ctx: ReconcileContext,
  key: string,
): Promise<ReconcileResult | undefined> {
  const obj = ctx.caches.sensors.get(key);
  if (!obj || obj.metadata.deletionTimestamp) return;
  const parsed = SensorSpec.safeParse(obj.spec ?? {});
  if (!parsed.success) {
    const msg = firstIssue(parsed.error);
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
  const d = await deploy(ctx, obj, obj.spec ?? {});
  conditions.push(d.condition, unsupported('trigger', usedTypes, SUPPORTED_TRIGGER_TYPES));

  // Consumers and KV state of dependencies/triggers that were removed from the spec.
  const bus = ctx.caches.buses.get(`${obj.metadata.namespace}/${busNameOf(obj)}`);
  const busSpec = bus && EventBusSpec.safeParse(bus.spec ?? {});
  if (bus && busSpec?.success && (busSpec.data.jetstream || busSpec.data.jetstreamExotic)) {
    try {
      const conn = await busConnection(ctx, bus, busSpec.data);
      const { removed } = await ctx.bus.pruneSensorState(
        conn,
        { namespace: obj.metadata.namespace ?? 'default', name: obj.metadata.name ?? '' },
        { dependencies: deps, triggers: triggers.map((t) => t.template?.name ?? '') },
      );
      if (removed.length)
        ctx.log.info({ sensor: key, removed }, 'removed state of deleted dependencies/triggers');
    } catch (err) {
      ctx.log.debug(
        { sensor: key, err: (err as Error).message },
        'bus not reachable for state cleanup; will retry',
      );
    }
  }
  await writeStatus(ctx, obj, withReady(conditions));
  return d.requeueAfterMs ? { requeueAfterMs: d.requeueAfterMs } : undefined;
}

export { splitKey };
