// Runs one Sensor: a durable consumer per dependency, filters and transform per event (user
// programs in the sandbox, off the event loop), trigger conditions with partial matches kept in
// JetStream KV (a restart loses none), and settle() for each trigger whose conditions are met.
// Every message ends delivered, dead-lettered with a reason, or handed back to wait (receive.ts).
// With `replicas > 1` only the Lease holder consumes.
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import { type ConditionNode, conditionNames, parseConditions } from '../api/conditions.ts';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import type { EventDependency, SensorSpec, TriggerParameter } from '../api/sensor.ts';
import { parseDurationMs } from '../api/stream-config.ts';
import { consume, DEFAULT_MAX_DELIVERIES, InFlight, sensorMaxDeliver } from '../bus/consumer.ts';
import { JsonState, kvKey, ProcessedSet } from '../bus/kv.ts';
import { KvGroupCommit } from '../bus/kv-group.ts';
import { Publisher } from '../bus/publisher.ts';
import { bindSensorState, openSensorState } from '../bus/sensor-state.ts';
import { type BusRef, consumerName, eventStreamName } from '../bus/subjects.ts';
import { LeaderElector } from '../controller/leader.ts';
import type { CloudEvent } from '../eventsources/envelope.ts';
import type { Logger } from '../observability/logger.ts';
import { Claims } from './claims.ts';
import type { EventDeadLetterEnv } from './event-dlq.ts';
import { type SensorTrigger, triggerFirer } from './fire.ts';
import { type PartialMatch, specFingerprint } from './join.ts';
import { JoinStateConflict, JoinStore } from './join-store.ts';
import { type SensorMetrics, sensorMetrics } from './metrics.ts';
import { startLagPoller } from './poll.ts';
import { triggerPreparer } from './prepare.ts';
import { messageReceiver } from './receive.ts';
import { Redactor } from './redact.ts';
import { resetSchedule } from './resets.ts';
import { Sandbox, type SandboxLimits } from './sandbox/pool.ts';
import { rejectTrigger, type SettleEnv, settle } from './settle.ts';
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
  /**
   * Compiles one dependency. `sandbox` is where its jq/Lua programs must run (given when the
   * Sensor has any); errors in them are reported here, at start.
   */
  compileDependency(dep: EventDependency, sandbox?: Sandbox): DependencyMatcher | Promise<DependencyMatcher>;
  params: ParameterFunctions;
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  resolveConfigMap(sel: ConfigMapKeySelector): Promise<string>;
  kubeConfig?: () => KubeConfig;
  /** Handlers running at once per dependency (default 64). */
  concurrency?: number;
  /** Consumer ack_wait (default 30 s); in-progress work is heartbeated at a third of it. */
  ackWaitMs?: number;
  /** How often consumer lag, DLQ depth and missing consumers are checked (default 5 s). */
  lagPollMs?: number;
  /** Where a new dependency consumer starts: "new" events (default) or "all" retained. */
  deliver?: 'new' | 'all';
  /** How long the processed-set remembers an idempotency key (default 7 days). */
  processedTtlMs?: number;
  /** Overrides of the sandbox limits (spec.evaluation wins over these). */
  sandboxLimits?: Partial<SandboxLimits>;
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
  /** Why the Sensor is not doing its job (e.g. a dependency's consumer is gone), or undefined. */
  notReady(): string | undefined;
  stop(): Promise<void>;
}

const DEFAULT_PROCESSED_TTL = 7 * 24 * 3600 * 1000;

export { UnsupportedTriggerError } from './prepare.ts';

/** True when a dependency runs a user program (jq or Lua). */
const hasProgram = (d: EventDependency) =>
  Boolean(d.filters?.script || d.transform?.jq || d.transform?.script);

/** The sandbox limits of a Sensor: its spec.evaluation over the runtime's defaults. */
export function sandboxLimitsFor(
  spec: SensorSpec,
  base: Partial<SandboxLimits> = {},
): Partial<SandboxLimits> {
  const e = spec.evaluation;
  const timeoutMs = e?.timeout ? parseDurationMs(e.timeout) : undefined;
  return {
    ...base,
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(e?.memoryMiB ? { memoryMiB: e.memoryMiB } : {}),
    ...(e?.workers ? { workers: e.workers } : {}),
  };
}

/** The triggers of `spec`, prepared, with their conditions, fingerprint and reset schedule. */
function sensorTriggers(
  spec: SensorSpec,
  prepare: ReturnType<typeof triggerPreparer>['prepare'],
  clearEvents: (trigger: string) => Promise<void>,
): SensorTrigger[] {
  const depNames = (spec.dependencies ?? []).map((d) => d.name);
  return (spec.triggers ?? []).map((t, i) => {
    const base = prepare(t, `trigger-${i}`);
    const conditions = t.template?.conditions
      ? parseConditions(t.template.conditions)
      : (depNames.reduceRight<ConditionNode | undefined>(
          (acc, n) =>
            acc ? { kind: 'and', left: { kind: 'name', name: n }, right: acc } : { kind: 'name', name: n },
          undefined,
        ) ?? { kind: 'name', name: '' });
    const dependencies = conditionNames(conditions);
    const resets = resetSchedule(t, () => clearEvents(base.name));
    return {
      ...base,
      ...(t.dlqTrigger ? { dlq: prepare(t.dlqTrigger, `${base.name}-dlq`) } : {}),
      conditions,
      dependencies,
      fingerprint: specFingerprint(t, spec.dependencies ?? [], dependencies),
      ...(resets ? { resets } : {}),
    };
  });
}

export async function startSensor(o: SensorRuntimeOptions): Promise<RunningSensor> {
  const spec = o.spec;
  const log = o.log.child({ sensor: o.name, namespace: o.namespace, ...(spec.loggingFields ?? {}) });
  const metrics = sensorMetrics(o.registry);
  const jsm: JetStreamManager = await jetstreamManager(o.nc);
  const js = jetstream(o.nc);
  const publisher = new Publisher(o.nc);
  const ackWaitMs = o.ackWaitMs ?? 30_000;
  // Consumers exist before anyone consumes, so events published meanwhile are kept for us. The
  // controller provisions them (with the same settings: sensorConsumerSpecs, sensorMaxDeliver).
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
        maxDeliver: sensorMaxDeliver(spec),
        deliver: o.deliver ?? 'new',
      },
      ...(o.replicas ? { replicas: o.replicas } : {}),
      processedTtlMs: o.processedTtlMs ?? DEFAULT_PROCESSED_TTL,
    },
    { onWait: (what) => log.info({ waitingFor: what }, 'waiting for the controller to provision bus state') },
  );
  // Claims and done marks of the events handled in one turn go to the bus as one batch.
  const processed = new ProcessedSet(state.processed, new KvGroupCommit(o.nc, state.processed));
  const joins = new JoinStore(new JsonState<PartialMatch>(state.conditions));
  const lifetime = new AbortController();
  const kubeConfig = (): KubeConfig => {
    if (!o.kubeConfig) throw new Error('this trigger needs Kubernetes access, and none is configured');
    return o.kubeConfig();
  };
  // Every secret value resolved for a trigger is registered, so error text can be cleaned of it.
  const redactor = new Redactor((m) => log.warn(m));
  const resolveSecret = async (sel: SecretKeySelector) => {
    const v = await o.resolveSecret(sel);
    redactor.add(v);
    return v;
  };
  const redact = (s: string) => redactor.redact(s);

  const { prepare, runners } = triggerPreparer({
    namespace: o.namespace,
    name: o.name,
    runners: o.runners,
    params: o.params,
    metrics,
    log,
  });
  const triggers = sensorTriggers(spec, prepare, async (name) => {
    // A live reset clears the waiting events; firings in flight stay until they settle.
    for (let tries = 0; tries < 5; tries++) {
      const { result: n, durable } = await joins.change(name, (cur) => {
        const waiting = Object.keys(cur.events).length;
        return waiting ? { next: { ...cur, events: {} }, result: waiting } : { result: 0 };
      });
      try {
        await durable;
      } catch (err) {
        if (err instanceof JoinStateConflict) continue; // read again and reset that
        throw err;
      }
      if (n)
        metrics.partialDiscarded.inc({ namespace: o.namespace, sensor_name: o.name, trigger_name: name }, n);
      break;
    }
    log.info({ trigger: name }, 'partial condition matches reset (conditionsReset)');
  });

  const env: SettleEnv = {
    namespace: o.namespace,
    sensorName: o.name,
    bus: o.bus,
    processed,
    // A claim left by a process that died expires with the ack_wait that brings its message back.
    claims: new Claims(
      processed,
      o.identity ? `${o.identity}/${process.pid}` : undefined,
      o.ackWaitMs ?? 30_000,
    ),
    publisher,
    metrics,
    signal: lifetime.signal,
    redact,
    context: {
      namespace: o.namespace,
      sensorName: o.name,
      log,
      buildPayload: (params) => {
        throw new Error(`buildPayload called outside a trigger call (${params?.length ?? 0} parameters)`);
      },
      applyParameters: (target) => target,
      resolveSecret,
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
  const fire = triggerFirer({
    namespace: o.namespace,
    sensorName: o.name,
    processed,
    joins,
    log,
    run: (t, events, since) => settle(envFor(events), t, events, since),
    reject: (t, events, reason, message) => rejectTrigger(envFor(events), t, events, reason, message),
    maxStateBytes: publisher.maxPayload - 8 * 1024,
    onReplaced: (trigger) =>
      metrics.partialReplaced.inc({ namespace: o.namespace, sensor_name: o.name, trigger_name: trigger }),
    onDiscarded: (trigger, n) =>
      metrics.partialDiscarded.inc({ namespace: o.namespace, sensor_name: o.name, trigger_name: trigger }, n),
  });

  const sandbox = (spec.dependencies ?? []).some(hasProgram)
    ? new Sandbox({ outputBytes: publisher.maxPayload, ...sandboxLimitsFor(spec, o.sandboxLimits) })
    : undefined;
  const matchers = new Map<string, DependencyMatcher>();
  try {
    for (const d of spec.dependencies ?? []) matchers.set(d.name, await o.compileDependency(d, sandbox));
  } catch (err) {
    await sandbox?.close();
    for (const t of triggers) t.resets?.stop();
    throw err;
  }
  const dlq: EventDeadLetterEnv = {
    namespace: o.namespace,
    sensorName: o.name,
    bus: o.bus,
    publisher,
    metrics,
    log,
    triggers,
    envFor,
    redact,
    signal: lifetime.signal,
  };
  const receive = messageReceiver({
    namespace: o.namespace,
    sensorName: o.name,
    log,
    metrics,
    triggers,
    matchers,
    dlq,
    fire,
    maxDeliveries: spec.maxDeliveries ?? DEFAULT_MAX_DELIVERIES,
    deferrals: {
      get: async (k) => Number((await processed.kv.get(kvKey(`defers/${k}`)))?.string() || 0),
      set: async (k, n) => void (await processed.kv.put(kvKey(`defers/${k}`), String(n))),
    },
    ackWaitMs,
    errorOnFailedRound: Boolean(spec.errorOnFailedRound),
  });

  const consumers = (spec.dependencies ?? []).map((dep, i) => ({
    dependency: dep.name,
    durable: state.consumers[i]!,
    inFlight: new InFlight(),
  }));
  const deps = new Map((spec.dependencies ?? []).map((d) => [d.name, d]));

  const startConsuming = (signal: AbortSignal): Promise<void>[] =>
    consumers.map(({ dependency, durable, inFlight }) =>
      consume(js, eventStreamName(o.bus), durable, (msg) => receive(deps.get(dependency)!, msg), {
        inFlight,
        concurrency: o.concurrency ?? 64,
        batch: 256,
        expiresMs: 5000,
        signal,
        errorDelayMs: 1000,
        onError: (err, msg) =>
          log.error(
            { dependency, seq: msg.seq, err: redact((err as Error).message) },
            'event handling failed; redelivering',
          ),
      }).catch((err: unknown) => {
        if (!signal.aborted) log.error({ dependency, err: (err as Error).message }, 'consumer stopped');
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
        // Partial matches may have changed under another leader: read them from the bus again.
        joins.clear();
        loops.push(...startConsuming(AbortSignal.any([signal, lifetime.signal])));
      },
    });
    elector.start();
  } else {
    loops.push(...startConsuming(lifetime.signal));
  }

  const poller = startLagPoller({
    jsm,
    bus: o.bus,
    namespace: o.namespace,
    sensorName: o.name,
    metrics,
    consumers,
    log,
    ...(o.lagPollMs ? { everyMs: o.lagPollMs } : {}),
  });

  log.info(
    {
      dependencies: [...deps.keys()],
      triggers: triggers.map((t) => `${t.name} (${t.type})`),
      consumers: consumers.map((c) => consumerName(o.name, c.dependency)),
      ...(sandbox ? { sandbox: sandbox.limits } : {}),
    },
    'sensor running',
  );

  return {
    metrics,
    notReady: () => poller.notReady(),
    async stop() {
      lifetime.abort(new Error('sensor stopping'));
      poller.stop();
      for (const t of triggers) t.resets?.stop();
      // Programs still queued or running are abandoned at once (their events go back un-acked), so
      // a backlog of runaway programs cannot hold SIGTERM up.
      const closing = sandbox?.close();
      await Promise.allSettled(loops);
      await elector?.stop();
      await Promise.allSettled([...runners.values()].map((r) => r.close?.()));
      await closing;
    },
  };
}
