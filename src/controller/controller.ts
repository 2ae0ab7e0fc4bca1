// The operator: informers for the three sluice kinds and the children it creates, one work queue
// per kind, reconcile workers, leader election, and the metrics/health server.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { KubeAccess } from '../kube/config.ts';
import { EventRecorder, type EventSink } from '../kube/events.ts';
import type { Logger } from '../observability/logger.ts';
import { Applier, collectionOf } from './apply.ts';
import { Informer } from './informer.ts';
import { KubeHttp, type KubeObject, objectKey } from './kube-http.ts';
import { LeaderElector } from './leader.ts';
import { informerMetrics, leaderMetric, workQueueMetrics } from './metrics.ts';
import { groupOf, ownerKey } from './owners.ts';
import { LABEL_EVENTBUS } from './reconcile/bus-security.ts';
import {
  type BusOperations,
  busNameOf,
  type ControllerOptions,
  type ReconcileContext,
  type SluiceObject,
} from './reconcile/context.ts';
import { noteDeleted } from './reconcile/deleted.ts';
import { reconcileEventBus } from './reconcile/eventbus.ts';
import { reconcileEventSource, reconcileSensor } from './reconcile/workload.ts';
import { LABEL_MANAGED_BY, LABEL_PART_OF, MANAGED_BY } from './resources/common.ts';
import {
  awaitDeletionMarks,
  departureReason,
  holdRbac,
  releaseFinalizers,
  releaseRbac,
  type SelfRefs,
  settledWithin,
  terminatingCrds,
} from './uninstall.ts';
import { controllerRateLimiter, type ReconcileResult, runWorkers, WorkQueue } from './workqueue.ts';

/** Cached objects drop managedFields: large, and never read by the controller. */
function withoutManagedFields(o: KubeObject): KubeObject {
  const meta = o.metadata as (KubeObject['metadata'] & { managedFields?: unknown }) | undefined;
  if (!meta?.managedFields) return o;
  const { managedFields: _dropped, ...metadata } = meta;
  return { ...o, metadata };
}

/** For children only the identity and owner references matter. */
function metadataOnly(o: KubeObject): KubeObject {
  const m = o.metadata ?? {};
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      generation: m.generation,
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
      labels: m.labels,
      ownerReferences: m.ownerReferences,
    },
  } as KubeObject;
}

export interface ControllerConfig extends ControllerOptions {
  kubeConfig: KubeAccess;
  registry: Registry;
  logger: Logger;
  bus: BusOperations;
  /** Watch only this namespace (upstream --namespaced / --managed-namespace). */
  namespace?: string;
  leaderElection?: {
    enabled: boolean;
    namespace: string;
    leaseName?: string;
    leaseDurationMs?: number;
    renewDeadlineMs?: number;
    retryPeriodMs?: number;
  };
  workers?: number;
  /** Called when leadership is lost (not on stop()); the CLI exits so a fresh process campaigns. */
  onLostLeadership?: () => void;
  /** Record Kubernetes Events (events.k8s.io/v1) about the objects; default true. */
  events?: boolean;
  /** Watch the sluice CRDs for an uninstall (needs list/watch on CRDs); default true. */
  watchCrds?: boolean;
  /** The controller's own Deployment and RBAC objects (see uninstall.ts); none by default. */
  self?: SelfRefs;
}

/** Workloads made by Argo Events' controllers carry this label (upstream's `controller` label). */
const UPSTREAM_CHILDREN = 'controller in (eventsource-controller,sensor-controller,eventbus-controller)';
/**
 * How long a departing controller spends on cleaning bus state before it just takes its finalizers
 * off (its pod has 30 s to stop, and a deleted ServiceAccount's token works for 60 s).
 */
const DEPART_BUDGET_MS = 12_000;
/** How long stop() works off queued and in-progress reconciles (each makes bounded attempts of 5 s). */
const IN_FLIGHT_GRACE_MS = 6_000;
/** How long a departure during CRD deletion waits for the objects' deletion to show in the cache. */
const DELETION_MARKS_MS = 3_000;
/** How long stop() waits for each of flushing Events, stopping watches and closing bus connections. */
const CLOSE_GRACE_MS = 2_000;

type Kind = 'EventBus' | 'EventSource' | 'Sensor';

/** Kubernetes Events through the controller's own HTTP layer. */
function eventSink(http: KubeHttp): EventSink {
  const base = (ns: string) => `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/events`;
  return {
    create: (ns, body) => http.request('POST', base(ns), { body, timeoutMs: 10_000 }),
    patch: (ns, name, body) =>
      http.request('PATCH', `${base(ns)}/${encodeURIComponent(name)}`, {
        body,
        contentType: 'application/merge-patch+json',
        timeoutMs: 10_000,
      }),
  };
}
const GROUP = 'argoproj.io';

export class Controller {
  private readonly cfg: ControllerConfig;
  private readonly http: KubeHttp;
  private readonly log: Logger;
  private readonly queues: Record<Kind, WorkQueue>;
  private readonly informers: Informer<SluiceObject>[] = [];
  private readonly ctx: ReconcileContext;
  private elector?: LeaderElector;
  private leadership?: AbortController;
  private running: Promise<void>[] = [];
  private synced = false;
  private stopping = false;
  private leading = false;
  private readonly crds?: Informer<SluiceObject>;
  private departing: string | undefined;
  private readonly reconciles: Counter<'kind' | 'result'>;
  private readonly durations: Histogram<'kind'>;

  constructor(cfg: ControllerConfig) {
    this.cfg = cfg;
    this.http = new KubeHttp(cfg.kubeConfig);
    this.log = cfg.logger.child({ component: 'controller' });
    const q = (name: string) =>
      new WorkQueue({ rateLimiter: controllerRateLimiter(), hooks: workQueueMetrics(cfg.registry, name) });
    this.queues = { EventBus: q('eventbus'), EventSource: q('eventsource'), Sensor: q('sensor') };
    this.reconciles = new Counter({
      name: 'sluice_controller_reconcile_total',
      help: 'Reconciles by kind and result (success, error, requeue).',
      labelNames: ['kind', 'result'],
      registers: [cfg.registry],
    });
    this.durations = new Histogram({
      name: 'sluice_controller_reconcile_duration_seconds',
      help: 'Time spent in one reconcile, by kind.',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [cfg.registry],
    });
    const informer = (
      path: string,
      resource: string,
      labelSelector?: string,
      transform: (o: KubeObject) => KubeObject = withoutManagedFields,
    ) => {
      const inf = new Informer<SluiceObject>({
        kubeConfig: cfg.kubeConfig,
        path,
        ...(cfg.namespace ? { namespace: cfg.namespace } : {}),
        ...(labelSelector ? { labelSelector } : {}),
        transform,
        hooks: informerMetrics(cfg.registry, resource),
        logger: cfg.logger,
      });
      this.informers.push(inf);
      return inf;
    };
    const buses = informer(`/apis/${GROUP}/v1alpha1/eventbus`, 'eventbus');
    const sources = informer(`/apis/${GROUP}/v1alpha1/eventsources`, 'eventsources');
    const sensors = informer(`/apis/${GROUP}/v1alpha1/sensors`, 'sensors');
    const children = new Map<string, Informer<SluiceObject>>();
    const foreign: Informer<SluiceObject>[] = [];
    if (cfg.watchCrds !== false) {
      this.crds = new Informer<SluiceObject>({
        kubeConfig: cfg.kubeConfig,
        path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
        labelSelector: `${LABEL_PART_OF}=sluice`,
        transform: metadataOnly,
        hooks: informerMetrics(cfg.registry, 'customresourcedefinitions'),
        logger: cfg.logger,
      });
    }
    this.ctx = {
      http: this.http,
      applier: new Applier(this.http),
      log: this.log,
      now: () => new Date(),
      options: cfg,
      bus: cfg.bus,
      caches: { buses, sources, sensors, children, foreign },
      appliedVersions: new Map(),
      knownBuses: new Map(),
      deleted: new Map(),
      swept: new Set(),
      uninstalling: () => (this.crds ? terminatingCrds(this.crds.list()) : undefined) ?? this.departing,
      ...(cfg.events !== false
        ? {
            events: new EventRecorder({
              sink: eventSink(this.http),
              controller: 'sluice.argoproj.io/controller',
              instance: process.env.POD_NAME ?? hostname(),
              onError: (err, what) =>
                this.log.debug({ err: (err as Error).message, what }, 'could not record a Kubernetes Event'),
            }),
          }
        : {}),
    };
    if (this.crds) {
      let told = false;
      const crdChanged = (crd: SluiceObject) => {
        if (!crd.metadata.deletionTimestamp || told) return;
        told = true;
        this.log.warn(
          { crd: crd.metadata.name },
          'sluice CRDs are being deleted: releasing finalizers after one bounded clean-up attempt each',
        );
        this.enqueueAll();
      };
      // CRDs (re)installed: informers waiting to list their kinds again try at once.
      const crdAdded = (crd: SluiceObject, origin: string) => {
        if (origin === 'watch') for (const inf of this.informers) inf.retryNow();
        crdChanged(crd);
      };
      this.crds.addEventHandler({ onAdd: crdAdded, onUpdate: (_, c) => crdChanged(c) });
    }

    const enqueueSelf = (kind: Kind) => ({
      onAdd: (o: SluiceObject) => this.queues[kind].add(objectKey(o)),
      onUpdate: (_: SluiceObject, o: SluiceObject) => this.queues[kind].add(objectKey(o)),
      onDelete: (o: SluiceObject) => {
        // Only the leader cleans: a standby's old tombstone could hit a same-named successor's state.
        if (this.leading) noteDeleted(this.ctx, o);
        this.queues[kind].add(objectKey(o));
      },
    });
    buses.addEventHandler(enqueueSelf('EventBus'));
    sources.addEventHandler(enqueueSelf('EventSource'));
    sensors.addEventHandler(enqueueSelf('Sensor'));
    // A bus appearing, changing or going away concerns everything that uses it; a user going away
    // may unblock a bus deletion.
    const busUsersOf = (bus: SluiceObject) => {
      for (const [kind, cache] of [
        ['EventSource', sources],
        ['Sensor', sensors],
      ] as const) {
        for (const u of cache.list()) {
          if (u.metadata.namespace === bus.metadata.namespace && busNameOf(u) === bus.metadata.name) {
            this.queues[kind].add(objectKey(u));
          }
        }
      }
    };
    buses.addEventHandler({ onAdd: busUsersOf, onUpdate: (_, b) => busUsersOf(b), onDelete: busUsersOf });
    // A user appearing, changing or going away changes the bus's users and their permissions (a
    // managed bus's server config) and may unblock a bus deletion.
    const userChanged = (u: SluiceObject) =>
      this.queues.EventBus.add(`${u.metadata.namespace}/${busNameOf(u)}`);
    for (const inf of [sources, sensors])
      inf.addEventHandler({ onAdd: userChanged, onUpdate: (_, u) => userChanged(u), onDelete: userChanged });

    // Children (only ours, by label) enqueue their owner, so drift is repaired.
    const managed = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
    for (const [apiVersion, kind] of [
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'StatefulSet'],
      ['v1', 'Service'],
      ['v1', 'ConfigMap'],
      ['v1', 'Secret'],
      ['policy/v1', 'PodDisruptionBudget'],
    ] as const) {
      // Only the owner references of children are used: cache nothing else (memory per object).
      const inf = informer(collectionOf(apiVersion, kind), kind.toLowerCase(), managed, metadataOnly);
      children.set(kind, inf);
      const toOwner = (child: SluiceObject) => {
        for (const k of ['EventBus', 'EventSource', 'Sensor'] as const) {
          const key = ownerKey(child, { group: GROUP, kind: k });
          if (key) this.queues[k].add(key);
        }
        // A role's bus credential changed (rotated): its bus's server config must follow.
        const bus = child.metadata.labels?.[LABEL_EVENTBUS];
        if (bus) this.queues.EventBus.add(`${child.metadata.namespace}/${bus}`);
      };
      inf.addEventHandler({ onAdd: toOwner, onUpdate: (_, c) => toOwner(c), onDelete: toOwner });
    }
    // Argo Events' workloads for the same objects: while they exist sluice does not run its own.
    for (const [apiVersion, kind] of [
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'StatefulSet'],
    ] as const) {
      const inf = informer(
        collectionOf(apiVersion, kind),
        `upstream-${kind.toLowerCase()}`,
        UPSTREAM_CHILDREN,
        metadataOnly,
      );
      foreign.push(inf);
      const toOwner = (child: SluiceObject) => {
        for (const r of child.metadata.ownerReferences ?? []) {
          const k = r.kind as Kind;
          if (groupOf(r.apiVersion) === GROUP && k in this.queues)
            this.queues[k].add(`${child.metadata.namespace}/${r.name}`);
        }
      };
      inf.addEventHandler({ onAdd: toOwner, onUpdate: (_, c) => toOwner(c), onDelete: toOwner });
    }
  }

  private enqueueAll(): void {
    for (const [kind, inf] of [
      ['EventBus', this.ctx.caches.buses],
      ['EventSource', this.ctx.caches.sources],
      ['Sensor', this.ctx.caches.sensors],
    ] as const) {
      for (const o of inf.list()) this.queues[kind].add(objectKey(o));
    }
  }

  /**
   * Ready when the caches are synced and every informer can still list (a LIST that fails after
   * the sync, e.g. its CRD deleted under the running controller, says why, as before the sync).
   */
  notReady(): string | undefined {
    const failing = this.informers.map((i) => i.listProblem()).filter((p) => p !== undefined);
    if (this.synced) return failing.length ? `caches out of date: ${failing.join('; ')}` : undefined;
    return failing.length ? `caches not synced yet: ${failing.join('; ')}` : 'caches not synced yet';
  }

  isLeader(): boolean {
    return this.leading;
  }

  private handler(kind: Kind) {
    const fn = { EventBus: reconcileEventBus, EventSource: reconcileEventSource, Sensor: reconcileSensor }[
      kind
    ];
    return async (key: string): Promise<ReconcileResult | undefined> => {
      const end = this.durations.startTimer({ kind });
      try {
        const r = (await fn(this.ctx, key)) ?? undefined;
        this.reconciles.inc({ kind, result: r?.requeueAfterMs ? 'requeue' : 'success' });
        return r;
      } catch (err) {
        this.reconciles.inc({ kind, result: 'error' });
        throw err;
      } finally {
        end();
      }
    };
  }

  private startWorkers(signal: AbortSignal): void {
    const workers = this.cfg.workers ?? 4;
    for (const kind of ['EventBus', 'EventSource', 'Sensor'] as const) {
      this.running.push(
        runWorkers(this.queues[kind], workers, this.handler(kind), {
          onError: (key, err, retries) =>
            this.log.warn(
              { kind, key, retries, err: (err as Error).message },
              'reconcile failed; retrying with backoff',
            ),
        }),
      );
    }
    signal.addEventListener('abort', () => {
      for (const q of Object.values(this.queues)) q.shutDown();
    });
  }

  async start(): Promise<void> {
    for (const inf of this.informers) inf.start();
    // Not waited for: a controller without rights on CRDs (namespaced install) works without it.
    this.crds?.start();
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    this.synced = true;
    this.log.info({ namespace: this.cfg.namespace ?? '(all)' }, 'caches synced');
    if (this.cfg.self) await holdRbac(this.http, this.cfg.self, this.log);
    const le = this.cfg.leaderElection;
    if (!le?.enabled) {
      this.leading = true;
      this.leadership = new AbortController();
      this.startWorkers(this.leadership.signal);
      return;
    }
    const registryLeader = leaderMetric(this.cfg.registry, le.leaseName ?? 'sluice-controller');
    this.elector = new LeaderElector({
      kubeConfig: this.cfg.kubeConfig,
      namespace: le.namespace,
      name: le.leaseName ?? 'sluice-controller',
      identity: `${process.env.POD_NAME ?? hostname()}-${randomBytes(3).toString('hex')}`,
      ...(le.leaseDurationMs ? { leaseDurationMs: le.leaseDurationMs } : {}),
      ...(le.renewDeadlineMs ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
      ...(le.retryPeriodMs ? { retryPeriodMs: le.retryPeriodMs } : {}),
      logger: this.cfg.logger,
      onStartedLeading: (signal) => {
        this.leading = true;
        registryLeader(true);
        this.log.info('became leader; reconciling');
        // Everything known is worth a look after a hand-over.
        this.enqueueAll();
        this.startWorkers(signal);
      },
      onStoppedLeading: () => {
        this.leading = false;
        registryLeader(false);
        if (this.stopping) return;
        this.log.warn('lost leadership');
        for (const q of Object.values(this.queues)) q.shutDown();
        this.cfg.onLostLeadership?.();
      },
    });
    this.elector.start();
  }

  /**
   * Stops. A controller that is leaving for good (see uninstall.ts: its Deployment deleted or scaled
   * to 0, its CRDs terminating, its rights gone) first finalizes what is being deleted, takes its
   * finalizers off everything else and releases its RBAC hold: at most about 27 s with an
   * unreachable bus (6 s of queued work, 3 s for deletion marks during CRD deletion, 12 s of
   * cleaning, 2 s per closing step; 20 s measured), inside the pod's 30 s grace period.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const leaving = this.synced
      ? await departureReason(this.http, this.cfg.self ?? {}, this.ctx.uninstalling?.())
      : undefined;
    this.leadership?.abort();
    // Queued keys are worked off for a bounded time, then dropped (the next controller lists
    // everything again): a departure must end within the pod's grace period and within the 60 s
    // the API server still accepts a deleted ServiceAccount's token.
    for (const q of Object.values(this.queues)) q.shutDown();
    await this.elector?.stop();
    await settledWithin(Promise.allSettled(this.running), IN_FLIGHT_GRACE_MS);
    for (const q of Object.values(this.queues)) q.shutDownNow();
    if (leaving) {
      // CRDs going: every object is about to be deleted; wait (briefly) until the cache shows it,
      // so its bus state is cleaned rather than its finalizer just taken off.
      if (this.crds && terminatingCrds(this.crds.list()))
        await awaitDeletionMarks(this.ctx, DELETION_MARKS_MS);
      this.departing = leaving;
      this.log.warn({ why: leaving }, 'leaving for good: releasing finalizers');
      const r = await releaseFinalizers(this.ctx, (kind, key) => this.handler(kind)(key), DEPART_BUDGET_MS);
      (r.failed.length ? this.log.error : this.log.info).call(this.log, r, 'finalizers released');
      if (this.cfg.self) await releaseRbac(this.http, this.cfg.self, this.log);
    }
    // The rest is bounded too: a frozen bus or an API server that stopped answering must not keep
    // the process past its grace period (what is left is cut when it exits).
    await settledWithin(this.ctx.events?.flush(), CLOSE_GRACE_MS);
    for (const inf of this.informers) inf.stop();
    await settledWithin(this.crds?.stop(), CLOSE_GRACE_MS);
    await settledWithin(this.cfg.bus.close(), CLOSE_GRACE_MS);
  }
}
