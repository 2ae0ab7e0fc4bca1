// EventBus reconciler: managed JetStream → Secret, ConfigMap, Services, StatefulSet, PDB; exotic
// → connect. Then the streams from streamConfig, `status.config` for clients, conditions
// Deployed / StreamReady / Ready, and a finalizer that removes the streams (unless Retain) and
// refuses to let the bus go while EventSources or Sensors still use it.
import { EventBusSpec } from '../../api/eventbus.ts';
import { parseStreamConfig, streamSettingWarnings } from '../../api/stream-config.ts';
import { formatPath } from '../../api/validate.ts';
import { busLimits, busReplicas, busStorage } from '../../bus/placement.ts';
import { type ConditionInput, mergeConditions, withReady } from '../conditions.ts';
import { splitKey } from '../kube-http.ts';
import {
  ADMIN_KEY,
  busNames,
  type ManagedBusOptions,
  managedBusChildren,
  managedBusUrl,
  TLS_KEYS,
} from '../resources/eventbus.ts';
import type { ReconcileResult } from '../workqueue.ts';
import { busSecrets, busTls, readSecret, roleUsers } from './bus-security.ts';
import { applyChild, emitEvent, foreignChildren, forgetChild } from './children.ts';
import {
  BUS_FINALIZER,
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
import { cleanDeleted, dropFinalizers, finalizersOff, rememberBus } from './deleted.ts';
import { podPolicyBlock } from './pod-policy.ts';
import { writeStatus } from './status.ts';

const RETRY_UNREACHABLE_MS = 15_000;
/**
 * The config reloader sidecar of managed buses: `sluice nats-reloader` from the sluice runtime
 * image, which every node running EventSources and Sensors already has (nothing else to pull or
 * mirror); or the image given with `--nats-reloader-image` (upstream's flags), run as is.
 */
export function reloaderOptions(
  options: ReconcileContext['options'],
): Pick<ManagedBusOptions, 'reloaderImage' | 'reloaderCommand' | 'reloaderPullPolicy'> {
  if (options.natsReloaderImage) return { reloaderImage: options.natsReloaderImage };
  return {
    reloaderImage: options.image,
    reloaderCommand: ['sluice', 'nats-reloader'],
    ...(options.imagePullPolicy ? { reloaderPullPolicy: options.imagePullPolicy } : {}),
  };
}

interface SecretObject {
  data?: Record<string, string>;
}

async function readSecretKey(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
  key: string,
): Promise<string | undefined> {
  const secret = await ctx.applier.get<SecretObject & { metadata?: Record<string, never> }>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
  });
  const v = secret?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

/**
 * Objects in the bus's namespace that still use it: live ones, and deleted ones whose finalizer
 * still has to remove their state from this bus (so it goes after them, never before).
 */
export function busUsers(ctx: ReconcileContext, namespace: string, busName: string): string[] {
  const users: string[] = [];
  for (const [kind, cache] of [
    ['EventSource', ctx.caches.sources],
    ['Sensor', ctx.caches.sensors],
  ] as const) {
    for (const obj of cache.list()) {
      const cleaning = obj.metadata.finalizers?.some(
        (f) => f === SENSOR_FINALIZER || f === EVENTSOURCE_FINALIZER,
      );
      if (
        obj.metadata.namespace === namespace &&
        busNameOf(obj) === busName &&
        (!obj.metadata.deletionTimestamp || cleaning)
      ) {
        users.push(`${kind}/${obj.metadata.name}`);
      }
    }
  }
  return users.sort();
}

/** Names of the Sensors in the cache that use this bus (deleted ones included until they go). */
function sensorsOf(ctx: ReconcileContext, namespace: string, busName: string): Set<string> {
  const out = new Set<string>();
  for (const obj of ctx.caches.sensors.list())
    if (obj.metadata.namespace === namespace && busNameOf(obj) === busName) out.add(obj.metadata.name ?? '');
  return out;
}

/** Warning conditions: they do not make the bus unready, but they say loudly what can be lost. */
function warnings(spec: EventBusSpec, streamConfig: string | undefined): ConditionInput[] {
  const out: ConditionInput[] = [];
  if (busStorage(spec) === 'ephemeral')
    out.push({
      type: 'Durable',
      status: 'False',
      reason: 'PersistenceEphemeral',
      message:
        'spec.jetstream.persistence is not set: the JetStream store is an emptyDir, so a pod that is deleted or rescheduled loses its copy of accepted events and of the processed set (replication hides one such loss, not several); set persistence',
    });
  else
    out.push({
      type: 'Durable',
      status: 'True',
      reason: busStorage(spec) === 'external' ? 'External' : 'Persistent',
      message: '',
    });
  const parsed = parseStreamConfig(streamConfig);
  const lossy = parsed.ok ? streamSettingWarnings(parsed.settings).lossy : [];
  out.push(
    lossy.length
      ? { type: 'Lossless', status: 'False', reason: 'DiscardOld', message: lossy.join('; ') }
      : { type: 'Lossless', status: 'True', reason: 'DiscardNew', message: '' },
  );
  return out;
}

/**
 * How the controller itself connects to a bus, or why it cannot yet (reading its Secrets failed).
 * The answer is remembered (ctx.knownBuses) for cleaning its users' state after the bus is gone.
 */
export async function busConnection(
  ctx: ReconcileContext,
  bus: SluiceObject,
  spec: EventBusSpec,
): Promise<BusConnection> {
  const conn = await connectionOf(ctx, bus, spec);
  rememberBus(ctx, bus, conn);
  return conn;
}

async function connectionOf(
  ctx: ReconcileContext,
  bus: SluiceObject,
  spec: EventBusSpec,
): Promise<BusConnection> {
  const namespace = bus.metadata.namespace ?? 'default';
  const busName = bus.metadata.name ?? '';
  const placement = (text: string | undefined) => {
    const parsed = parseStreamConfig(text);
    return {
      replicas: busReplicas(spec, parsed.ok ? parsed.settings : {}),
      ...(parsed.ok ? { limits: busLimits(spec, parsed.settings) } : {}),
    };
  };
  if (spec.jetstream) {
    const names = busNames(busName);
    const admin = (await readSecret(ctx, namespace, names.secret))?.[ADMIN_KEY];
    const t = spec.jetstream.tls;
    const ca = t?.disabled
      ? undefined
      : (await readSecret(ctx, namespace, t?.secretName ?? names.tls))?.[TLS_KEYS.ca];
    return {
      namespace,
      busName,
      url: managedBusUrl(ownerOf(bus)),
      ...(admin ? { credential: admin } : {}),
      ...(ca ? { tls: { ca } } : {}),
      streamConfig: spec.jetstream.streamConfig,
      ...placement(spec.jetstream.streamConfig),
    };
  }
  const ex = spec.jetstreamExotic!;
  const credential = ex.accessSecret
    ? await readSecretKey(ctx, namespace, ex.accessSecret.name ?? '', ex.accessSecret.key)
    : undefined;
  const fromSecret = async (sel: { name?: string; key: string } | undefined) =>
    sel ? readSecretKey(ctx, namespace, sel.name ?? '', sel.key) : undefined;
  const [ca, cert, key] = await Promise.all([
    fromSecret(ex.tls?.caCertSecret),
    fromSecret(ex.tls?.clientCertSecret),
    fromSecret(ex.tls?.clientKeySecret),
  ]);
  const tls = {
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(ex.tls?.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
  };
  return {
    namespace,
    busName,
    url: ex.url ?? '',
    credential,
    streamConfig: ex.streamConfig,
    ...placement(ex.streamConfig),
    ...(Object.keys(tls).length || ex.tls ? { tls } : {}),
  };
}

/** The finalizer Argo Events' controller puts on every EventBus. */
export const UPSTREAM_BUS_FINALIZER = 'eventbus-controller';

/**
 * True when a deleted bus carries Argo Events' finalizer and none of Argo Events' workloads for it
 * remain (its controller is not managing it): sluice removes that finalizer with its own, since no
 * one else will. While upstream's children exist, upstream's controller is presumed alive and its
 * finalizer is left to it.
 */
function upstreamFinalizerRemovable(ctx: ReconcileContext, bus: SluiceObject): boolean {
  if (!bus.metadata.finalizers?.includes(UPSTREAM_BUS_FINALIZER)) return false;
  for (const cache of ctx.caches.foreign ?? [])
    for (const c of cache.list())
      if (c.metadata.ownerReferences?.some((r) => r.uid === bus.metadata.uid)) return false;
  return true;
}

/**
 * Once per bus and process (after the caches are synced): KV buckets of Sensors and EventSources
 * of its namespace that no longer exist are deleted from its server (objects deleted while no
 * controller ran, e.g. a namespaced one, which has no finalizers). A failure is retried next time.
 */
async function sweepBuckets(ctx: ReconcileContext, bus: SluiceObject, conn: BusConnection): Promise<void> {
  const uid = bus.metadata.uid ?? '';
  if (!ctx.swept || ctx.swept.has(uid) || !ctx.bus.deleteOrphanBuckets) return;
  const ns = bus.metadata.namespace;
  const names = (cache: typeof ctx.caches.sensors) =>
    cache
      .list()
      .filter((o) => o.metadata.namespace === ns)
      .map((o) => o.metadata.name ?? '');
  try {
    const removed = await ctx.bus.deleteOrphanBuckets(conn, {
      sensors: names(ctx.caches.sensors),
      eventSources: names(ctx.caches.sources),
    });
    ctx.swept.add(uid);
    if (removed.length)
      ctx.log.info(
        { bus: `${ns}/${bus.metadata.name}`, removed },
        'removed KV buckets of Sensors/EventSources that no longer exist',
      );
  } catch (err) {
    ctx.log.debug(
      { bus: `${ns}/${bus.metadata.name}`, err: (err as Error).message },
      'orphan bucket sweep failed',
    );
  }
}

export async function reconcileEventBus(
  ctx: ReconcileContext,
  key: string,
): Promise<ReconcileResult | undefined> {
  const bus = ctx.caches.buses.get(key);
  const gone = await cleanDeleted(ctx, 'EventBus', key, bus);
  if (!bus) return gone;
  await dropFinalizers(ctx, bus);
  const { namespace = 'default' } = splitKey(key);
  const name = bus.metadata.name ?? '';
  const parsed = EventBusSpec.safeParse(bus.spec ?? {});

  if (bus.metadata.deletionTimestamp) {
    const upstream = upstreamFinalizerRemovable(ctx, bus);
    if (!bus.metadata.finalizers?.includes(BUS_FINALIZER)) {
      // Taken over from Argo Events: its finalizer guards children it is no longer there to run.
      if (upstream)
        await ctx.applier.setFinalizers(
          bus,
          bus.metadata.finalizers!.filter((f) => f !== UPSTREAM_BUS_FINALIZER),
        );
      return;
    }
    const leaving = ctx.uninstalling?.();
    const users = busUsers(ctx, namespace, name);
    if (users.length && !leaving) {
      await writeStatus(ctx, bus, [
        {
          type: 'Ready',
          status: 'False',
          reason: 'InUse',
          message: `deletion waits: still used by ${users.join(', ')}; delete those first`,
        },
      ]);
      return { requeueAfterMs: 5_000 };
    }
    ctx.bus.unmonitor({ namespace, busName: name });
    if (
      parsed.success &&
      parsed.data.deletionPolicy !== 'Retain' &&
      (parsed.data.jetstream || parsed.data.jetstreamExotic)
    ) {
      try {
        const deleting = (async () => ctx.bus.deleteStreams(await busConnection(ctx, bus, parsed.data)))();
        await (leaving ? within(deleting, UNINSTALL_ATTEMPT_MS, 'deleting streams') : deleting);
      } catch (err) {
        // A bus we cannot reach has nothing we can clean; a managed one loses its store with its pods.
        ctx.log.warn(
          { bus: key, err: (err as Error).message },
          'could not delete streams; removing finalizer anyway',
        );
      }
    }
    await ctx.applier.setFinalizers(
      bus,
      (bus.metadata.finalizers ?? []).filter(
        (f) => f !== BUS_FINALIZER && !(upstream && f === UPSTREAM_BUS_FINALIZER),
      ),
    );
    return;
  }

  if (!parsed.success) {
    const first = parsed.error.issues[0];
    emitEvent(
      ctx,
      bus,
      'Warning',
      'InvalidSpec',
      'Reconcile',
      `spec.${formatPath(first?.path ?? [])}: ${first?.message ?? 'invalid'}`,
    );
    await writeStatus(
      ctx,
      bus,
      withReady([
        {
          type: 'Deployed',
          status: 'False',
          reason: 'InvalidSpec',
          message: `spec.${formatPath(first?.path ?? [])}: ${first?.message ?? 'invalid'}`,
        },
      ]),
    );
    return;
  }
  const spec = parsed.data;
  if (spec.nats || spec.kafka) {
    emitEvent(
      ctx,
      bus,
      'Warning',
      'UnsupportedBusType',
      'Reconcile',
      'nats (NATS Streaming) and kafka buses are not supported by sluice; use jetstream or jetstreamExotic',
    );
    await writeStatus(
      ctx,
      bus,
      withReady([
        {
          type: 'Deployed',
          status: 'False',
          reason: 'UnsupportedBusType',
          message: `${spec.nats ? 'nats (NATS Streaming)' : 'kafka'} buses are not supported by sluice; use jetstream or jetstreamExotic`,
        },
      ]),
    );
    return;
  }

  const blocked = podPolicyBlock(ctx, bus);
  if (blocked) {
    emitEvent(ctx, bus, 'Warning', blocked.reason, 'Reconcile', blocked.message ?? '');
    await writeStatus(ctx, bus, withReady([blocked]));
    return;
  }

  if (!finalizersOff(ctx) && !bus.metadata.finalizers?.includes(BUS_FINALIZER)) {
    await ctx.applier.setFinalizers(bus, [...(bus.metadata.finalizers ?? []), BUS_FINALIZER]);
  }

  const conditions: ConditionInput[] = [];
  let statusConfig: Record<string, unknown>;
  const foreign = spec.jetstream ? foreignChildren(ctx, bus) : undefined;
  if (foreign) {
    emitEvent(ctx, bus, 'Warning', foreign.reason, 'Reconcile', foreign.message ?? '');
    await writeStatus(ctx, bus, withReady([foreign]));
    return { requeueAfterMs: 60_000 };
  }
  if (spec.jetstream) {
    const owner = ownerOf(bus);
    const names = busNames(name);
    const tls = await busTls(ctx, bus, spec);
    if ('problem' in tls) {
      await writeStatus(
        ctx,
        bus,
        withReady([{ type: 'Deployed', status: 'False', reason: 'TLSSecretInvalid', message: tls.problem }]),
      );
      return { requeueAfterMs: RETRY_UNREACHABLE_MS };
    }
    const secrets = await busSecrets(ctx, namespace, name);
    const roles = await roleUsers(ctx, namespace, name, secrets.accountSlots);
    const children = managedBusChildren(owner, spec, {
      defaultImage: ctx.options.natsImage,
      ...reloaderOptions(ctx.options),
      secrets,
      users: roles.users,
      accountSlots: roles.accountSlots,
      ...(tls.enabled
        ? { tls: { secretName: tls.secretName, ...(tls.generated ? { generated: tls.generated } : {}) } }
        : {}),
    });
    // The CA Secret first: the TLS Secret of an older version is then re-made without the CA key.
    const conflicts: string[] = [];
    const apply = async (child: Parameters<typeof applyChild>[2]) => {
      const r = await applyChild(ctx, bus, child);
      if (!r.ok) conflicts.push(r.conflict);
    };
    if (children.caSecret) await apply(children.caSecret);
    if (children.tlsSecret && (await readSecret(ctx, namespace, names.tls))?.[TLS_KEYS.caKey]) {
      await ctx.applier.delete(children.tlsSecret);
      forgetChild(ctx, children.tlsSecret);
    }
    for (const child of [
      children.secret,
      children.configSecret,
      ...(children.tlsSecret ? [children.tlsSecret] : []),
      children.service,
      children.headlessService,
      children.networkPolicy,
      children.statefulSet,
      children.pdb,
    ]) {
      await apply(child);
    }
    if (conflicts.length) {
      await writeStatus(
        ctx,
        bus,
        withReady([
          { type: 'Deployed', status: 'False', reason: 'ChildConflict', message: conflicts.join('; ') },
        ]),
      );
      return { requeueAfterMs: 60_000 };
    }
    // The config was a ConfigMap before it held the route password: remove the old one.
    await ctx.applier.delete({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: names.configMap, namespace },
    });
    conditions.push({
      type: 'Deployed',
      status: 'True',
      reason: 'Deployed',
      message: `StatefulSet ${names.statefulSet} applied`,
    });
    statusConfig = {
      jetstream: {
        url: managedBusUrl(owner),
        accessSecret: { name: names.secret, key: ADMIN_KEY },
        ...(tls.enabled ? { tls: { caCertSecret: { name: tls.secretName, key: TLS_KEYS.ca } } } : {}),
        ...(spec.jetstream.streamConfig ? { streamConfig: spec.jetstream.streamConfig } : {}),
      },
    };
  } else {
    const ex = spec.jetstreamExotic!;
    conditions.push({
      type: 'Deployed',
      status: 'True',
      reason: 'Exotic',
      message: 'uses an existing JetStream server',
    });
    statusConfig = {
      jetstream: {
        url: ex.url,
        ...(ex.accessSecret ? { accessSecret: ex.accessSecret } : {}),
        ...(ex.tls ? { tls: ex.tls } : {}),
        ...(ex.streamConfig ? { streamConfig: ex.streamConfig } : {}),
      },
    };
  }

  let requeueAfterMs: number | undefined;
  try {
    const conn = await busConnection(ctx, bus, spec);
    const outcome = await ctx.bus.ensureStreams(conn);
    conditions.push({
      type: 'StreamReady',
      status: outcome.ok ? 'True' : 'False',
      reason: outcome.reason,
      message: `${outcome.message} (${conn.replicas} replica(s))`,
    });
    if (!outcome.ok) requeueAfterMs = RETRY_UNREACHABLE_MS;
    else {
      ctx.bus.monitor(conn, {
        deadLettered: (bySensor) => {
          for (const [sensor, added] of bySensor) {
            const s = ctx.caches.sensors.get(`${namespace}/${sensor}`);
            if (s)
              emitEvent(
                ctx,
                s,
                'Warning',
                'DeadLettered',
                'Deliver',
                `events were dead-lettered (${added > 1 ? 'several' : 'one'} since the last look); \`sluice dlq list\` shows them and why`,
              );
          }
        },
      });
      // Consumers of Sensors deleted before the controller owned their state would pin events.
      const orphans = await ctx.bus.deleteOrphanConsumers(conn, sensorsOf(ctx, namespace, name));
      if (orphans.length)
        ctx.log.info({ bus: key, removed: orphans }, 'removed consumers of Sensors that no longer exist');
      await sweepBuckets(ctx, bus, conn);
    }
  } catch (err) {
    conditions.push({
      type: 'StreamReady',
      status: 'False',
      reason: 'BusUnreachable',
      message: `cannot reach the JetStream server yet: ${(err as Error).message}`,
    });
    requeueAfterMs = RETRY_UNREACHABLE_MS;
  }
  for (const c of conditions)
    if (c.status === 'False') emitEvent(ctx, bus, 'Warning', c.reason, 'Reconcile', c.message || c.reason);
  const warn = warnings(spec, spec.jetstream?.streamConfig ?? spec.jetstreamExotic?.streamConfig);
  for (const w of warn)
    if (w.status === 'False') ctx.log.warn({ bus: key, reason: w.reason }, w.message ?? w.reason);
  await writeStatus(ctx, bus, [...withReady(conditions), ...warn], { config: statusConfig });
  return requeueAfterMs ? { requeueAfterMs } : undefined;
}

export { mergeConditions };
