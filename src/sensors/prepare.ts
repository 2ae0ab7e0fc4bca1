// Turns a Sensor trigger spec into a PreparedTrigger: its runner (one per type, shared), retry
// plan, rate limiter, circuit breaker and parameter resolution. Used by the Sensor runtime and by
// `sluice dlq replay`.
import type { Trigger, TriggerParameter } from '../api/sensor.ts';
import { parseDurationMs } from '../api/stream-config.ts';
import type { Logger } from '../observability/logger.ts';
import { retryPlan } from '../resilience/backoff.ts';
import { type BreakerState, CircuitBreaker } from '../resilience/breaker.ts';
import { RateLimiter, windowMs } from '../resilience/rate-limit.ts';
import type { SensorMetrics } from './metrics.ts';
import type { ParameterFunctions } from './options.ts';
import type { PreparedTrigger } from './settle.ts';
import { triggerType } from './trigger-types.ts';
import type { TriggerRunner } from './triggers/trigger.ts';

const BREAKER_CODE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

export class UnsupportedTriggerError extends Error {
  readonly code = 'UnsupportedTriggerType';
}

export interface PreparerOptions {
  namespace: string;
  name: string;
  runners: Readonly<Record<string, () => TriggerRunner>>;
  params: ParameterFunctions;
  metrics: SensorMetrics;
  log: Logger;
}

/** Freezes `v` and everything in it (plain data: objects and arrays). */
function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/**
 * `specFor` of a trigger: the type's spec with the trigger-level parameters, then the type's own,
 * applied for the events (a fresh copy per call). A spec with no parameters at either level is
 * the same for every event: it is copied and frozen once and that copy is returned every time
 * (a runner never changes the spec it is given).
 */
function specResolver(
  template: object,
  type: string,
  parameters: readonly TriggerParameter[] | undefined,
  ownParams: boolean,
  params: ParameterFunctions,
): PreparedTrigger['specFor'] {
  const typedOf = (resolved: object) =>
    (resolved as Record<string, unknown>)[type] as { parameters?: TriggerParameter[] } | undefined;
  const fixedTyped = typedOf(template);
  if (!parameters?.length && !(ownParams && fixedTyped?.parameters?.length)) {
    const fixed = deepFreeze(structuredClone(fixedTyped));
    return () => fixed;
  }
  return (events) => {
    const typed = typedOf(params.applyParameters(template, parameters, events));
    return ownParams && typed?.parameters?.length
      ? params.applyParameters(typed, typed.parameters, events)
      : typed;
  };
}

export function triggerPreparer(o: PreparerOptions) {
  const { metrics, log } = o;
  const runners = new Map<string, TriggerRunner>();
  const runnerFor = (type: string, trigger: string): TriggerRunner => {
    let r = runners.get(type);
    if (!r) {
      const make = o.runners[type];
      if (!make)
        throw new UnsupportedTriggerError(`trigger ${trigger}: type ${type} is not supported by this build`);
      r = make();
      runners.set(type, r);
    }
    return r;
  };

  const prepare = (t: Omit<Trigger, 'dlqTrigger'>, fallbackName: string): PreparedTrigger => {
    const template = t.template;
    if (!template) throw new Error(`trigger ${fallbackName} has no template`);
    const name = template.name ?? fallbackName;
    const type = triggerType(template);
    const runner = runnerFor(type, name);
    const labels = { namespace: o.namespace, sensor_name: o.name, trigger_name: name };
    const cb = t.circuitBreaker;
    const breaker = cb
      ? new CircuitBreaker({
          consecutiveFailures: cb.consecutiveFailures ?? 5,
          openDurationMs: parseDurationMs(cb.openDuration ?? '30s') ?? 30_000,
          halfOpenProbes: cb.halfOpenProbes ?? 1,
          onStateChange: (s) => {
            metrics.breakerState.set(labels, BREAKER_CODE[s]);
            log.warn({ trigger: name, state: s }, 'circuit breaker');
          },
        })
      : undefined;
    if (breaker) metrics.breakerState.set(labels, 0);
    const rl = t.rateLimit;
    // Types whose runner applies their own `parameters` (to a source, or, for kafka, to its spec):
    // applying them here too would run `append`/`prepend` twice.
    const ownParams = type !== 'k8s' && type !== 'argoWorkflow' && type !== 'kafka';
    return {
      name,
      type,
      runner,
      policy: t.policy,
      plan: retryPlan(t.retryStrategy),
      ...(rl
        ? { rateLimiter: new RateLimiter({ limit: rl.requestsPerUnit ?? 1, windowMs: windowMs(rl.unit) }) }
        : {}),
      ...(breaker ? { breaker } : {}),
      breakerMaxWaitMs: parseDurationMs(cb?.maxWait ?? '10m') ?? 600_000,
      specFor: specResolver(template, type, t.parameters, ownParams, o.params),
    };
  };
  return { prepare, runners };
}
