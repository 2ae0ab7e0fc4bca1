// Runs one Sensor: a durable consumer per dependency, filters and transform per event, trigger
// conditions with partial matches kept in JetStream KV (a restart loses none), and settle() for
// each trigger whose conditions are met. A message is acked only after every trigger it made
// ready reached a terminal outcome (done, duplicate, dead-lettered); an open circuit breaker hands
// it back un-acked for later. With `replicas > 1` only the Lease holder consumes.
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { type JetStreamManager, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Cron } from 'croner';
import type { Registry } from 'prom-client';
import {
  type ConditionNode,
  conditionNames,
  evaluateConditions,
  parseConditions,
} from '../api/conditions.ts';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import type { EventDependency, SensorSpec, TriggerParameter } from '../api/sensor.ts';
import { ack, consume, InFlight, nak, working } from '../bus/consumer.ts';
import { JsonState, ProcessedSet } from '../bus/kv.ts';
import { Publisher } from '../bus/publisher.ts';
import { bindSensorState, openSensorState } from '../bus/sensor-state.ts';
import { type BusRef, consumerName, dlqStreamName, dlqSubject, eventStreamName } from '../bus/subjects.ts';
import { LeaderElector } from '../controller/leader.ts';
import { type CloudEvent, decodeEvent } from '../eventsources/envelope.ts';
import type { Logger } from '../observability/logger.ts';
import { lookup, textOf } from './match/path.ts';
import { type SensorMetrics, sensorMetrics } from './metrics.ts';
import { triggerPreparer } from './prepare.ts';
import { idempotencyKey, type Outcome, type PreparedTrigger, type SettleEnv, settle } from './settle.ts';
import type { EventsByDependency, TriggerRunner } from './triggers/trigger.ts';

/** What the Sensor needs to match one dependency (compiled once). */
export interface DependencyMatcher {
  matches(event: CloudEvent): boolean | Promise<boolean>;
  transform(event: CloudEvent): CloudEvent | Promise<CloudEvent>;
}

export interface ParameterFunctions {
  applyParameters<T>(
    target: T,
    params: readonly TriggerParameter[] | undefined,
    events: EventsByDependency,
  ): T;
  buildPayload(params: readonly TriggerParameter[] | undefined, events: EventsByDependency): unknown;
}

export interface SensorRuntimeOptions {
  name: string;
  namespace: string;
  spec: SensorSpec;
  bus: BusRef;
  nc: NatsConnection;
  registry: Registry;
  log: Logger;
  runners: Readonly<Record<string, () => TriggerRunner>>;
  compileDependency(dep: EventDependency): DependencyMatcher | Promise<DependencyMatcher>;
  params: ParameterFunctions;
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  resolveConfigMap(sel: ConfigMapKeySelector): Promise<string>;
  kubeConfig?: () => KubeConfig;
  /** Handlers running at once per dependency (default 64). */
  concurrency?: number;
  /** Consumer ack_wait (default 30 s); in-progress work is heartbeated at a third of it. */
  ackWaitMs?: number;
  /** Where a new dependency consumer starts: "new" events (default) or "all" retained. */
  deliver?: 'new' | 'all';
  /** How long the processed-set remembers an idempotency key (default 7 days). */
  processedTtlMs?: number;
  /** Lease identity when `replicas > 1`. */
  identity?: string;
  /**
   * The controller has provisioned this Sensor's consumers and KV buckets: bind to them (waiting
   * until they exist) and never create or change them. Unset (`sluice dev`, tests): create them.
   */
  provisioned?: boolean;
  /** Copies of each KV entry when the Sensor creates its buckets itself (default 1). */
  replicas?: number;
  /** Namespace of the Lease (default: the Sensor's). */
  leaseNamespace?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface RunningSensor {
  metrics: SensorMetrics;
  stop(): Promise<void>;
}

interface SensorTrigger extends PreparedTrigger {
  /** Parsed conditions (default: all dependencies AND'ed). */
  conditions: ConditionNode;
  dependencies: ReadonlySet<string>;
  resets: string[];
}

interface PartialMatch {
  /** Latest event per dependency, not used by a firing yet. */
  events: Record<string, CloudEvent>;
  /** Firings claimed and not yet settled, by idempotency key. */
  inflight?: Record<string, Record<string, CloudEvent>>;
}

const DEFAULT_PROCESSED_TTL = 7 * 24 * 3600 * 1000;

/** The orderingKey value as text: a gjson path, read like every other path of a Sensor. */
const orderingValue = (data: unknown, path: string): string => textOf(lookup(data, path));

export { UnsupportedTriggerError } from './prepare.ts';

/**
 * Runs `fn` after every earlier call with the same key has settled (a per-key queue); the map
 * entry goes away when the queue is empty.
 */
function serialized<T>(queues: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => {});
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return next;
}

export async function startSensor(o: SensorRuntimeOptions): Promise<RunningSensor> {
  const spec = o.spec;
  const log = o.log.child({
    sensor: o.name,
    namespace: o.namespace,
    ...(spec.loggingFields ?? {}),
  });
  const metrics = sensorMetrics(o.registry);
  const jsm: JetStreamManager = await jetstreamManager(o.nc);
  const js = jetstream(o.nc);
  const publisher = new Publisher(o.nc);
  const ackWaitMs = o.ackWaitMs ?? 30_000;
  // Consumers exist before anyone consumes, so events published meanwhile are kept for us.
  const state = await (o.provisioned ? bindSensorState : openSensorState)(
    jsm,
    o.nc,
    {
      bus: o.bus,
      sensor: o.name,
      dependencies: spec.dependencies ?? [],
      tuning: {
        ackWaitMs,
        maxAckPending: Math.max(1000, (o.concurrency ?? 64) * 4),
        deliver: o.deliver ?? 'new',
      },
      ...(o.replicas ? { replicas: o.replicas } : {}),
      processedTtlMs: o.processedTtlMs ?? DEFAULT_PROCESSED_TTL,
    },
    { onWait: (what) => log.info({ waitingFor: what }, 'waiting for the controller to provision bus state') },
  );
  const processed = new ProcessedSet(state.processed);
  const partial = new JsonState<PartialMatch>(state.conditions);
  const lifetime = new AbortController();
  const kubeConfig = (): KubeConfig => {
    if (!o.kubeConfig) throw new Error('this trigger needs Kubernetes access, and none is configured');
    return o.kubeConfig();
  };

  const { prepare, runners } = triggerPreparer({
    namespace: o.namespace,
    name: o.name,
    runners: o.runners,
    params: o.params,
    metrics,
    log,
  });
  const depNames = (spec.dependencies ?? []).map((d) => d.name);

  const triggers: SensorTrigger[] = (spec.triggers ?? []).map((t, i) => {
    const base = prepare(t, `trigger-${i}`);
    const conditions = t.template?.conditions
      ? parseConditions(t.template.conditions)
      : (depNames.reduceRight<ConditionNode | undefined>(
          (acc, n) =>
            acc ? { kind: 'and', left: { kind: 'name', name: n }, right: acc } : { kind: 'name', name: n },
          undefined,
        ) ?? { kind: 'name', name: '' });
    return {
      ...base,
      ...(t.dlqTrigger ? { dlq: prepare(t.dlqTrigger, `${base.name}-dlq`) } : {}),
      conditions,
      dependencies: conditionNames(conditions),
      resets: (t.template?.conditionsReset ?? []).flatMap((r) => (r.byTime?.cron ? [r.byTime.cron] : [])),
    };
  });

  const env: SettleEnv = {
    namespace: o.namespace,
    sensorName: o.name,
    bus: o.bus,
    processed,
    publisher,
    metrics,
    signal: lifetime.signal,
    context: {
      namespace: o.namespace,
      sensorName: o.name,
      log,
      buildPayload: (params) => {
        throw new Error(`buildPayload called outside a trigger call (${params?.length ?? 0} parameters)`);
      },
      applyParameters: (target) => target,
      resolveSecret: o.resolveSecret,
      resolveConfigMap: o.resolveConfigMap,
      kubeConfig,
    },
  };
  // Payload and parameter helpers need the events of the call: bind them per call.
  const envFor = (events: EventsByDependency): SettleEnv => ({
    ...env,
    context: {
      ...env.context,
      buildPayload: (params) => o.params.buildPayload(params, events),
      applyParameters: (target, params) => o.params.applyParameters(target, params, events),
    },
  });

  /** Fires `t` for `events`; KV bookkeeping is the caller's. */
  const run = (t: SensorTrigger, events: EventsByDependency, since: number): Promise<Outcome> =>
    settle(envFor(events), t, events, since);

  // Partial matches of multi-dependency triggers. Each event is used in at most one firing: the
  // events of a firing are moved from `events` to `inflight` (keyed by idempotency key) in one
  // compare-and-set before the trigger runs, and removed after it settled. The triggering message
  // is acked only after that, so a crash anywhere leaves it to be redelivered: the redelivery finds
  // its event in `inflight` and settles that firing again (the processed-set makes it a no-op
  // when it had already succeeded). Events already used are remembered in the processed-set
  // ("used/<trigger>/<event id>") so a late redelivery cannot start a new partial match.
  const locks = new Map<string, Promise<unknown>>();
  const locked = <T>(name: string, fn: () => Promise<T>): Promise<T> => serialized(locks, name, fn);
  type Firing = [key: string, events: Record<string, CloudEvent>];
  const usedKey = (t: SensorTrigger, ev: CloudEvent) => `used/${t.name}/${ev.source}/${ev.subject}/${ev.id}`;

  /** Read-modify-write of a trigger's partial state, retried on a concurrent write. */
  const mutate = async <R>(
    t: SensorTrigger,
    f: (cur: PartialMatch) => { next?: PartialMatch; result: R },
  ): Promise<R> => {
    for (;;) {
      const cur = await partial.get(t.name);
      const value: PartialMatch = { events: {}, inflight: {}, ...(cur?.value ?? {}) };
      const { next, result } = f(value);
      if (!next) return result;
      const empty = Object.keys(next.events).length === 0 && Object.keys(next.inflight ?? {}).length === 0;
      if (empty && cur) {
        // Delete only if nobody wrote meanwhile: write the empty state under CAS first.
        if ((await partial.update(t.name, next, cur.revision)) !== undefined) return result;
        continue;
      }
      if ((await partial.update(t.name, next, cur?.revision ?? 0)) !== undefined) return result;
    }
  };

  const handleTrigger = async (
    t: SensorTrigger,
    dep: string,
    ev: CloudEvent,
    since: number,
  ): Promise<Outcome> => {
    if (evaluateConditions(t.conditions, new Set([dep]))) return run(t, { [dep]: ev }, since);
    const firings = await locked(t.name, async () => {
      if (await processed.has(usedKey(t, ev))) return [] as Firing[];
      return mutate<Firing[]>(t, (state) => {
        const inflight = state.inflight ?? {};
        // A redelivery of an event already claimed by a firing: settle that firing.
        const mine: Firing[] = Object.entries(inflight).filter(([, f]) =>
          Object.values(f).some((e) => e.id === ev.id),
        );
        if (mine.length) return { result: mine };
        const events = { ...state.events, [dep]: ev };
        const have = new Set(Object.keys(events).filter((d) => t.dependencies.has(d)));
        if (!evaluateConditions(t.conditions, have)) return { next: { events, inflight }, result: [] };
        const fired: Record<string, CloudEvent> = {};
        const left: Record<string, CloudEvent> = {};
        for (const [d, e] of Object.entries(events)) (have.has(d) ? fired : left)[d] = e;
        const key = idempotencyKey(o.namespace, o.name, t.name, fired);
        return { next: { events: left, inflight: { ...inflight, [key]: fired } }, result: [[key, fired]] };
      });
    });
    if (!firings.length) return { kind: 'done', detail: 'waiting for more dependencies' };
    let last: Outcome = { kind: 'done', detail: '' };
    for (const [key, fired] of firings) {
      const outcome = await run(t, fired, since);
      if (outcome.kind === 'defer') return outcome; // stays in flight; the redelivery retries it
      for (const e of Object.values(fired)) await processed.markIfAbsent(usedKey(t, e));
      await locked(t.name, () =>
        mutate(t, (state) => {
          const inflight = { ...(state.inflight ?? {}) };
          if (!(key in inflight)) return { result: undefined };
          delete inflight[key];
          return { next: { events: state.events, inflight }, result: undefined };
        }),
      );
      last = outcome;
    }
    return last;
  };

  const matchers = new Map<string, DependencyMatcher>();
  for (const d of spec.dependencies ?? []) matchers.set(d.name, await o.compileDependency(d));
  const chains = new Map<string, Promise<unknown>>();

  const handle = async (dep: EventDependency, msg: JsMsg, ev: CloudEvent): Promise<void> => {
    const dl = { namespace: o.namespace, sensor_name: o.name, dependency: dep.name };
    const matcher = matchers.get(dep.name)!;
    let matched: boolean;
    try {
      matched = await matcher.matches(ev);
    } catch (err) {
      log.warn(
        { dependency: dep.name, id: ev.id, err: (err as Error).message },
        'filter failed; event does not match',
      );
      matched = false;
    }
    metrics.eventsReceived.inc({ ...dl, result: matched ? 'matched' : 'filtered' });
    if (!matched) {
      await ack(msg);
      return;
    }
    let event: CloudEvent;
    try {
      event = await matcher.transform(ev);
    } catch (err) {
      // A transform that fails on this event fails every time: report it, do not loop on it.
      log.error(
        { dependency: dep.name, id: ev.id, err: (err as Error).message },
        'transform failed; event dropped',
      );
      metrics.eventsReceived.inc({ ...dl, result: 'transform-failed' });
      await ack(msg);
      return;
    }
    const since = Number(msg.info.timestampNanos / 1_000_000);
    const outcomes = await working(
      msg,
      () =>
        Promise.all(
          triggers
            .filter((t) => t.dependencies.has(dep.name))
            .map((t) => handleTrigger(t, dep.name, event, since)),
        ),
      Math.max(1000, Math.floor(ackWaitMs / 3)),
    );
    const deferred = outcomes.filter((x): x is Extract<Outcome, { kind: 'defer' }> => x.kind === 'defer');
    if (deferred.length) {
      for (const t of triggers)
        if (t.breaker?.state === 'open')
          metrics.deferred.inc({ namespace: o.namespace, sensor_name: o.name, trigger_name: t.name });
      nak(msg, Math.max(...deferred.map((x) => x.delayMs)));
      return;
    }
    if (spec.errorOnFailedRound && outcomes.some((x) => x.kind === 'dead-lettered')) {
      log.error({ dependency: dep.name, id: ev.id }, 'a trigger failed in this round (errorOnFailedRound)');
    }
    await ack(msg);
  };

  /** Decodes once; with an orderingKey, events of one key are handled one at a time, in order. */
  const receive = (dep: EventDependency, msg: JsMsg): Promise<void> => {
    let ev: CloudEvent;
    try {
      ev = decodeEvent(msg.data);
    } catch (err) {
      log.error(
        { dependency: dep.name, seq: msg.seq, err: (err as Error).message },
        'not a CloudEvent; dropped',
      );
      metrics.eventsReceived.inc({
        namespace: o.namespace,
        sensor_name: o.name,
        dependency: dep.name,
        result: 'undecodable',
      });
      msg.term('not a CloudEvent');
      return Promise.resolve();
    }
    if (!dep.orderingKey) return handle(dep, msg, ev);
    const key = `${dep.name}\u0000${orderingValue(ev.data, dep.orderingKey)}`;
    return serialized(chains, key, () => handle(dep, msg, ev));
  };

  const consumers = (spec.dependencies ?? []).map((dep, i) => ({
    dep,
    durable: state.consumers[i]!,
    inFlight: new InFlight(),
  }));

  const startConsuming = (signal: AbortSignal): Promise<void>[] =>
    consumers.map(({ dep, durable, inFlight }) =>
      consume(js, eventStreamName(o.bus), durable, (msg) => receive(dep, msg), {
        inFlight,
        concurrency: o.concurrency ?? 64,
        batch: 256,
        expiresMs: 5000,
        signal,
        errorDelayMs: 1000,
        onError: (err, msg) =>
          log.error(
            { dependency: dep.name, seq: msg.seq, err: (err as Error).message },
            'event handling failed; redelivering',
          ),
      }).catch((err: unknown) => {
        if (!signal.aborted)
          log.error({ dependency: dep.name, err: (err as Error).message }, 'consumer stopped');
      }),
    );

  const loops: Promise<void>[] = [];
  let elector: LeaderElector | undefined;
  if ((spec.replicas ?? 1) > 1) {
    elector = new LeaderElector({
      kubeConfig: kubeConfig(),
      namespace: o.leaseNamespace ?? o.namespace,
      name: `${o.name}-sensor`,
      identity: o.identity ?? `${hostname()}-${process.pid}`,
      logger: log,
      ...(o.leaseDurationMs ? { leaseDurationMs: o.leaseDurationMs } : {}),
      ...(o.renewDeadlineMs ? { renewDeadlineMs: o.renewDeadlineMs } : {}),
      ...(o.retryPeriodMs ? { retryPeriodMs: o.retryPeriodMs } : {}),
      onStartedLeading: (signal) => {
        log.info('leading: consuming');
        const both = AbortSignal.any([signal, lifetime.signal]);
        loops.push(...startConsuming(both));
      },
    });
    elector.start();
  } else {
    loops.push(...startConsuming(lifetime.signal));
  }

  const crons: Cron[] = [];
  for (const t of triggers) {
    for (const expr of t.resets) {
      const tz = (spec.triggers ?? [])
        .find((x) => (x.template?.name ?? '') === t.name)
        ?.template?.conditionsReset?.find((r) => r.byTime?.cron === expr)?.byTime?.timezone;
      crons.push(
        new Cron(expr, { ...(tz ? { timezone: tz } : {}), protect: true }, async () => {
          await partial.delete(t.name).catch(() => {});
          log.info({ trigger: t.name }, 'partial condition matches reset (conditionsReset)');
        }),
      );
    }
  }

  // Consumer lag, oldest unsettled event and DLQ depth, every few seconds.
  const poll = setInterval(() => {
    void (async () => {
      for (const { dep, durable, inFlight } of consumers) {
        const dl = { namespace: o.namespace, sensor_name: o.name, dependency: dep.name };
        try {
          const ci = await jsm.consumers.info(eventStreamName(o.bus), durable);
          metrics.pending.set(dl, ci.num_pending);
          metrics.ackPending.set(dl, ci.num_ack_pending);
          // The oldest event in hand (delivery is in stream order, so it is the oldest unsettled
          // one while this process consumes); read without access to the stream itself.
          metrics.oldestUnackedAge.set(dl, inFlight.oldestAgeSeconds());
        } catch {
          // the bus is unreachable; the connection state is reported elsewhere
        }
      }
      try {
        const si = await jsm.streams.info(dlqStreamName(o.bus), {
          subjects_filter: dlqSubject(o.bus, o.name, '*').replace(/\.[^.]*$/, '.*'),
        });
        const counts = si.state.subjects ?? {};
        metrics.dlqDepth.set(
          { namespace: o.namespace, sensor_name: o.name },
          Object.values(counts).reduce((a, b) => a + b, 0),
        );
      } catch {
        // no DLQ stream yet
      }
    })();
  }, 5000);
  poll.unref();

  log.info(
    {
      dependencies: depNames,
      triggers: triggers.map((t) => `${t.name} (${t.type})`),
      consumers: consumers.map((c) => consumerName(o.name, c.dep.name)),
    },
    'sensor running',
  );

  return {
    metrics,
    async stop() {
      lifetime.abort(new Error('sensor stopping'));
      clearInterval(poll);
      for (const c of crons) c.stop();
      await Promise.allSettled(loops);
      await elector?.stop();
      await Promise.allSettled([...runners.values()].map((r) => r.close?.()));
    },
  };
}
