// Runs one Sensor, top-down: open its bus state (state.ts), prepare its triggers (triggers-of.ts)
// and their settle environment (env.ts), compile its dependencies, then consume (consume.ts) →
// match (receive.ts) → fire (fire.ts: joins held in memory, join-store.ts) → settle (settle.ts).
// Every message ends delivered, dead-lettered with a reason, or handed back to wait. With
// `replicas > 1` only the Lease holder consumes.
import { type JetStreamManager, type JsMsg, jetstreamManager } from '@nats-io/jetstream';
import type { EventDependency, SensorSpec } from '../api/sensor.ts';
import { parseDurationMs } from '../api/stream-config.ts';
import { DEFAULT_MAX_DELIVERIES, sensorMaxDeliver } from '../bus/consumer.ts';
import { kvKey, type ProcessedSet } from '../bus/kv.ts';
import { Publisher } from '../bus/publisher.ts';
import { consumerName } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import { startConsumers } from './consume.ts';
import type { DoneIndex } from './done-index.ts';
import { type SensorEnv, sensorEnv } from './env.ts';
import type { EventDeadLetterEnv } from './event-dlq.ts';
import { FastPath } from './fast-path.ts';
import { abandonFirings, type FireDeps, type SensorTrigger, triggerFirer } from './fire.ts';
import { JoinStateConflict, type JoinStore } from './join-store.ts';
import { type SensorMetrics, sensorMetrics } from './metrics.ts';
import {
  DEFAULT_DRAIN_MS,
  type DependencyMatcher,
  type RunningSensor,
  type SensorRuntimeOptions,
} from './options.ts';
import { startLagPoller } from './poll.ts';
import { triggerPreparer } from './prepare.ts';
import { messageReceiver } from './receive.ts';
import { Sandbox, type SandboxLimits } from './sandbox/pool.ts';
import { rejectTrigger, settle } from './settle.ts';
import { openState } from './state.ts';
import { sensorTriggers } from './triggers-of.ts';

export type {
  DependencyMatcher,
  ParameterFunctions,
  RunningSensor,
  SensorRuntimeOptions,
} from './options.ts';
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

/** A live conditionsReset: clears the waiting events of a trigger (firings in flight stay). */
function resetWaiting(joins: JoinStore, metrics: SensorMetrics, o: SensorRuntimeOptions, log: Logger) {
  return async (name: string): Promise<void> => {
    try {
      await resetOnce(name);
    } catch (err) {
      log.warn(
        { trigger: name, err: (err as Error).message },
        'conditionsReset failed; the next one will clear',
      );
    }
  };
  async function resetOnce(name: string): Promise<void> {
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
      log.info({ trigger: name }, 'partial condition matches reset (conditionsReset)');
      return;
    }
    throw new Error('the partial match kept changing under the reset (5 tries)');
  }
}

/** The matchers of the Sensor's dependencies, compiled at start (their errors surface here). */
async function compileMatchers(o: SensorRuntimeOptions, sandbox: Sandbox | undefined) {
  const matchers = new Map<string, DependencyMatcher>();
  for (const d of o.spec.dependencies ?? []) matchers.set(d.name, await o.compileDependency(d, sandbox));
  return matchers;
}

/** The message handler: match, then fire the triggers the event makes ready. */
function receiver(
  o: SensorRuntimeOptions,
  p: {
    log: Logger;
    metrics: SensorMetrics;
    triggers: SensorTrigger[];
    matchers: Map<string, DependencyMatcher>;
  },
  s: {
    processed: ProcessedSet;
    joins: JoinStore;
    publisher: Publisher;
    se: SensorEnv;
    signal: AbortSignal;
    index: DoneIndex;
    fresh?: (dep: string, msg: JsMsg) => boolean;
  },
  ackWaitMs: number,
) {
  const labels = (trigger: string) => ({
    namespace: o.namespace,
    sensor_name: o.name,
    trigger_name: trigger,
  });
  const fd: FireDeps = {
    namespace: o.namespace,
    sensorName: o.name,
    processed: s.processed,
    joins: s.joins,
    log: p.log,
    run: (t, events, since, onEffect, delivery) =>
      settle(s.se.envFor(events), t, events, since, {
        ...(onEffect ? { onEffect } : {}),
        ...(delivery ? { delivery } : {}),
      }),
    index: s.index,
    reject: (t, events, reason, message) => rejectTrigger(s.se.envFor(events), t, events, reason, message),
    maxStateBytes: s.publisher.maxPayload - 8 * 1024,
    onReplaced: (trigger) => p.metrics.partialReplaced.inc(labels(trigger)),
    onDiscarded: (trigger, n) => p.metrics.partialDiscarded.inc(labels(trigger), n),
  };
  const fire = triggerFirer(fd);
  const dlq: EventDeadLetterEnv = {
    namespace: o.namespace,
    sensorName: o.name,
    bus: o.bus,
    publisher: s.publisher,
    metrics: p.metrics,
    log: p.log,
    triggers: p.triggers,
    envFor: s.se.envFor,
    redact: s.se.redact,
    signal: s.signal,
  };
  const kv = s.processed.kv;
  return messageReceiver({
    namespace: o.namespace,
    sensorName: o.name,
    log: p.log,
    metrics: p.metrics,
    triggers: p.triggers,
    matchers: p.matchers,
    dlq,
    fire,
    abandon: (t, dep, ev, message) => abandonFirings(fd, t, dep, ev, 'max-deliveries', message),
    maxDeliveries: o.spec.maxDeliveries ?? DEFAULT_MAX_DELIVERIES,
    maxDeliver: sensorMaxDeliver(o.spec),
    deferrals: {
      get: async (k) => Number((await kv.get(kvKey(`defers/${k}`)))?.string() || 0),
      set: async (k, n) => void (await kv.put(kvKey(`defers/${k}`), String(n))),
    },
    ackWaitMs,
    errorOnFailedRound: Boolean(o.spec.errorOnFailedRound),
    ...(s.fresh ? { fresh: s.fresh } : {}),
  });
}

/**
 * The sandbox (only when a dependency has a program) and the compiled matchers. Throws what
 * compiling throws, with the sandbox closed and the triggers' reset schedules stopped.
 */
async function compileWithSandbox(
  o: SensorRuntimeOptions,
  outputBytes: number,
  triggers: readonly SensorTrigger[],
): Promise<{ sandbox: Sandbox | undefined; matchers: Map<string, DependencyMatcher> }> {
  const sandbox = (o.spec.dependencies ?? []).some(hasProgram)
    ? new Sandbox({ outputBytes, ...sandboxLimitsFor(o.spec, o.sandboxLimits) })
    : undefined;
  try {
    return { sandbox, matchers: await compileMatchers(o, sandbox) };
  } catch (err) {
    await sandbox?.close();
    for (const t of triggers) t.resets?.stop();
    throw err;
  }
}

/**
 * The second half of stop(), once nothing new starts: stops the reset schedules, abandons
 * sandbox programs, lets trigger calls under way finish for up to the drain time (then aborts
 * them), waits for the consumers to hand back or settle their messages, and closes the runners.
 */
async function drainAndClose(p: {
  o: SensorRuntimeOptions;
  log: Logger;
  triggers: readonly SensorTrigger[];
  sandbox: Sandbox | undefined;
  calls: AbortController;
  consuming: { stopped(): Promise<void> };
  runners: ReadonlyMap<string, { close?(): Promise<void> | void }>;
}): Promise<void> {
  for (const t of p.triggers) t.resets?.stop();
  // Programs still queued or running are abandoned at once (their events go back un-acked), so
  // a backlog of runaway programs cannot hold SIGTERM up.
  const closing = p.sandbox?.close();
  const drainMs = p.o.drainMs ?? DEFAULT_DRAIN_MS;
  const cut = setTimeout(() => {
    p.log.warn({ drainMs }, 'trigger calls still running when the drain time ran out: aborting them');
    p.calls.abort(new Error(`sensor stopping: trigger calls still running after ${drainMs} ms`));
  }, drainMs);
  await p.consuming.stopped();
  clearTimeout(cut);
  await Promise.allSettled([...p.runners.values()].map((r) => r.close?.()));
  await closing;
}

/**
 * Starts Sensor `o.name`: binds or creates its bus state, compiles its dependencies (throws on a
 * bad filter, transform or unsupported trigger, with nothing left running), and consumes until
 * `stop()`. Resolves once it is consuming (or, with replicas, waiting for its Lease).
 */
export async function startSensor(o: SensorRuntimeOptions): Promise<RunningSensor> {
  const spec = o.spec;
  const log = o.log.child({ sensor: o.name, namespace: o.namespace, ...(spec.loggingFields ?? {}) });
  const metrics = sensorMetrics(o.registry);
  const jsm: JetStreamManager = await jetstreamManager(o.nc);
  const publisher = new Publisher(o.nc);
  const ackWaitMs = o.ackWaitMs ?? 30_000;
  const state = await openState(o, jsm, o.nc, ackWaitMs, log);
  const { processed, joins, index } = state;
  const lifetime = new AbortController();
  // Calls under way outlive `lifetime` by up to the drain time (see SensorRuntimeOptions.drainMs).
  const calls = new AbortController();
  // Whether this process consumes alone: known once the consumers started (below).
  let sole = () => false;
  const fastPath = o.fastPath === false ? undefined : new FastPath(index, () => sole());
  const se = sensorEnv(o, {
    processed,
    publisher,
    metrics,
    log,
    signal: lifetime.signal,
    callSignal: calls.signal,
    ...(fastPath ? { fastPath } : {}),
  });
  const { prepare, runners } = triggerPreparer({
    namespace: o.namespace,
    name: o.name,
    runners: o.runners,
    params: o.params,
    metrics,
    log,
  });
  const triggers = sensorTriggers(spec, prepare, resetWaiting(joins, metrics, o, log));
  const { sandbox, matchers } = await compileWithSandbox(o, publisher.maxPayload, triggers);
  const boundAt = new Map<string, { boundAt: number }>();
  const fresh = fastPath
    ? (dep: string, msg: JsMsg) => fastPath.fresh(msg, boundAt.get(dep)?.boundAt ?? Number.POSITIVE_INFINITY)
    : undefined;
  const receive = receiver(
    o,
    { log, metrics, triggers, matchers },
    { processed, joins, publisher, se, signal: lifetime.signal, index, ...(fresh ? { fresh } : {}) },
    ackWaitMs,
  );
  const consuming = startConsumers(o, state.consumers, receive, {
    joins,
    log,
    redact: se.redact,
    signal: lifetime.signal,
    ...(fastPath ? { onLeadLost: () => fastPath.leadLost() } : {}),
  });
  for (const c of consuming.consumers) boundAt.set(c.dependency, c);
  sole = consuming.sole;
  // The rebuild runs beside consuming: until it caught up, every event claims (start-up is not delayed).
  const indexGauge = metrics.doneIndexReady.labels({ namespace: o.namespace, sensor_name: o.name });
  indexGauge.set(0);
  index.onReady = (ready) => indexGauge.set(ready ? 1 : 0);
  void index.start();
  const poller = startLagPoller({
    jsm,
    bus: o.bus,
    namespace: o.namespace,
    sensorName: o.name,
    metrics,
    consumers: consuming.consumers,
    log,
    ...(o.lagPollMs ? { everyMs: o.lagPollMs } : {}),
  });
  log.info(
    {
      dependencies: (spec.dependencies ?? []).map((d) => d.name),
      triggers: triggers.map((t) => `${t.name} (${t.type})`),
      consumers: consuming.consumers.map((c) => consumerName(o.name, c.dependency)),
      ...(sandbox ? { sandbox: sandbox.limits } : {}),
    },
    'sensor running',
  );
  return {
    metrics,
    notReady: () => poller.notReady(),
    doneIndex: index,
    async stop() {
      lifetime.abort(new Error('sensor stopping'));
      poller.stop();
      index.stop();
      await drainAndClose({ o, log, triggers, sandbox, calls, consuming, runners });
    },
  };
}
