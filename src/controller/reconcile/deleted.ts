// Bus state of objects deleted without a finalizer. A controller started with `--namespaced` has
// its rights from a Role, and a Role only grants rights in its own namespace: the one it manages.
// Deleting that namespace deletes the rights together with the objects, so a finalizer there could
// never be removed and the namespace would stay Terminating. Such a controller puts no finalizers
// on objects (and takes off those an earlier cluster-wide controller put there); instead, when its
// watch reports an object deleted, the object's reconcile deletes its streams, consumers or KV
// buckets from the last known object and the last connection the controller used for its bus (the
// bus object, its Secrets and the controller's rights may be gone by then).
//
// Keyed by kind/namespace/name and run in that key's reconcile, which the work queue never runs
// twice at once: a same-named object created right after is reconciled after the old state is
// gone (it starts clean, as with a finalizer), and a failed clean-up never deletes what the new
// object has provisioned since (the tombstone is dropped once a new object exists).
import { EventBusSpec } from '../../api/eventbus.ts';
import { isConflict } from '../kube-http.ts';
import type { ReconcileResult } from '../workqueue.ts';
import {
  BUS_FINALIZER,
  type BusConnection,
  busNameOf,
  EVENTSOURCE_FINALIZER,
  type ReconcileContext,
  SENSOR_FINALIZER,
  type SluiceObject,
  type Tombstone,
  within,
} from './context.ts';

type Kind = 'EventBus' | 'EventSource' | 'Sensor';

const OURS = new Set([BUS_FINALIZER, SENSOR_FINALIZER, EVENTSOURCE_FINALIZER]);
/** One clean-up attempt may take this long (a connect alone may take 5 s). */
const ATTEMPT_MS = 15_000;
/** Retry a failed clean-up this often, for this long (the bus may be gone for good). */
const RETRY_MS = 10_000;
const GIVE_UP_MS = 10 * 60_000;
/** A deleted bus still used by EventSources/Sensors keeps its streams; look again this often. */
const IN_USE_MS = 30_000;

/** True when the controller runs without finalizers (`finalizers: false`, set by `--namespaced`). */
export function finalizersOff(ctx: ReconcileContext): boolean {
  return ctx.options.finalizers === false;
}

/**
 * Without finalizers: takes sluice's finalizers off a live object that still has them (put there by
 * a cluster-wide controller before). A 409 is left to the watch event that follows.
 */
export async function dropFinalizers(ctx: ReconcileContext, obj: SluiceObject): Promise<void> {
  const f = obj.metadata.finalizers ?? [];
  if (!finalizersOff(ctx) || obj.metadata.deletionTimestamp || !f.some((x) => OURS.has(x))) return;
  try {
    await ctx.applier.setFinalizers(
      obj,
      f.filter((x) => !OURS.has(x)),
    );
    ctx.log.info(
      { object: `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}` },
      'removed sluice finalizers: this controller runs namespaced and cleans bus state when it sees a deletion',
    );
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}

/** Records the connection just used for `bus` (see ReconcileContext.knownBuses). */
export function rememberBus(ctx: ReconcileContext, bus: SluiceObject, conn: BusConnection): void {
  ctx.knownBuses?.set(`${conn.namespace}/${conn.busName}`, {
    uid: bus.metadata.uid ?? '',
    managed: !!(bus.spec as { jetstream?: unknown } | undefined)?.jetstream,
    conn,
  });
}

/**
 * The last connection of a bus whose object is gone, when it is an existing server
 * (jetstreamExotic): a managed bus's store goes with its pods, so there is nothing to reach.
 */
export function goneBusConnection(
  ctx: ReconcileContext,
  namespace: string,
  busName: string,
): BusConnection | undefined {
  const known = ctx.knownBuses?.get(`${namespace}/${busName}`);
  return known && !known.managed ? known.conn : undefined;
}

/** Informer delete handler: without finalizers, remembers `obj` for its reconcile to clean. */
export function noteDeleted(ctx: ReconcileContext, obj: SluiceObject): void {
  if (!finalizersOff(ctx) || !ctx.deleted) return;
  const ns = obj.metadata.namespace ?? 'default';
  const busName = obj.kind === 'EventBus' ? (obj.metadata.name ?? '') : busNameOf(obj);
  const bus = ctx.knownBuses?.get(`${ns}/${busName}`);
  const own = obj.kind !== 'EventBus' || bus?.uid === obj.metadata.uid;
  ctx.deleted.set(`${obj.kind}/${ns}/${obj.metadata.name}`, {
    obj,
    ...(bus && own ? { bus } : {}),
    seenAt: ctx.now().getTime(),
  });
}

/** Sensors and EventSources in the cache that use bus `namespace/name`, deleted ones included. */
function usersOf(ctx: ReconcileContext, namespace: string, name: string): string[] {
  const out: string[] = [];
  for (const cache of [ctx.caches.sources, ctx.caches.sensors])
    for (const o of cache.list())
      if (o.metadata.namespace === namespace && busNameOf(o) === name)
        out.push(`${o.kind}/${o.metadata.name}`);
  return out.sort();
}

/** True when the bus `t` used is managed and no longer exists as it was (its store goes with it). */
function managedBusGone(ctx: ReconcileContext, t: Tombstone): boolean {
  if (!t.bus?.managed) return false;
  const { namespace, busName } = t.bus.conn;
  return ctx.caches.buses.get(`${namespace}/${busName}`)?.metadata.uid !== t.bus.uid;
}

/** What to delete for `t`: the names removed, or undefined when there is nothing to do. */
async function cleanOnce(ctx: ReconcileContext, kind: Kind, t: Tombstone): Promise<string[] | undefined> {
  const name = t.obj.metadata.name ?? '';
  const ns = t.obj.metadata.namespace ?? 'default';
  const conn =
    t.bus?.conn ?? (kind === 'EventBus' ? undefined : goneBusConnection(ctx, ns, busNameOf(t.obj)));
  if (!conn) return undefined;
  if (kind === 'Sensor') return ctx.bus.deleteSensorState(conn, name);
  if (kind === 'EventSource') return ctx.bus.deleteEventSourceState(conn, name);
  const spec = EventBusSpec.safeParse(t.obj.spec ?? {});
  ctx.bus.unmonitor({ namespace: ns, busName: name });
  if (!spec.success || spec.data.deletionPolicy === 'Retain') return undefined;
  await ctx.bus.deleteStreams(conn);
  return ['event and dead-letter streams'];
}

/**
 * Cleans the bus state of the object deleted under `key` (recorded by noteDeleted), before
 * `current`, a same-named object created since, is reconciled. Returns a requeue while a clean-up
 * of an object that is still gone should be retried; otherwise undefined (done, or given up).
 * A deleted bus keeps its streams while EventSources or Sensors still use it.
 */
export async function cleanDeleted(
  ctx: ReconcileContext,
  kind: Kind,
  key: string,
  current: SluiceObject | undefined,
): Promise<ReconcileResult | undefined> {
  const id = `${kind}/${key}`;
  const t = ctx.deleted?.get(id);
  if (!t) return undefined;
  const object = `${kind}/${key}`;
  const forget = () => {
    ctx.deleted?.delete(id);
    const known = ctx.knownBuses?.get(key);
    if (kind === 'EventBus' && !current && known?.uid === t.obj.metadata.uid) ctx.knownBuses?.delete(key);
  };
  if (current && current.metadata.uid === t.obj.metadata.uid) return void ctx.deleted?.delete(id);
  if (kind === 'EventBus') {
    const users = usersOf(ctx, t.obj.metadata.namespace ?? 'default', t.obj.metadata.name ?? '');
    if (users.length && current) {
      ctx.log.info({ object, users }, 'EventBus re-created while in use: it keeps its streams');
      return void ctx.deleted?.delete(id);
    }
    if (users.length) {
      if (!t.waiting)
        ctx.log.info(
          { object, users },
          'EventBus deleted while in use: its streams stay until those are gone',
        );
      t.waiting = true;
      return { requeueAfterMs: IN_USE_MS };
    }
  }
  if (managedBusGone(ctx, t) && kind !== 'EventBus') {
    ctx.log.debug({ object }, 'its managed EventBus is gone: its state went with the bus');
    return void forget();
  }
  try {
    const removed = await within(cleanOnce(ctx, kind, t), ATTEMPT_MS, 'removing bus state');
    if (removed) ctx.log.info({ object, removed }, 'removed bus state of a deleted object');
    else ctx.log.debug({ object }, 'deleted object: no bus state known to remove');
    forget();
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    if (!current && !t.bus?.managed && ctx.now().getTime() - t.seenAt < GIVE_UP_MS) {
      ctx.log.warn({ object, err: message }, 'cannot remove the bus state of a deleted object yet; retrying');
      return { requeueAfterMs: RETRY_MS };
    }
    if (t.bus?.managed && !current) {
      ctx.log.warn(
        { object, err: message },
        'its managed EventBus cannot be reached: the state goes with its store',
      );
      return void forget();
    }
    ctx.log.error(
      { object, err: message },
      current
        ? 'gave up removing the bus state of a deleted object: the object re-created with its name reuses it'
        : 'gave up removing the bus state of a deleted object; it stays on the bus',
    );
    forget();
    return undefined;
  }
}
