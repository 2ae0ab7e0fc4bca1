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
import type { ParameterFunctions } from './runtime.ts';
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
    const ownParams = type !== 'k8s' && type !== 'argoWorkflow';
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
      specFor(events) {
        const resolved = o.params.applyParameters(template, t.parameters, events) as Record<string, unknown>;
        const typed = resolved[type] as { parameters?: TriggerParameter[] } | undefined;
        return ownParams && typed?.parameters?.length
          ? o.params.applyParameters(typed, typed.parameters, events)
          : typed;
      },
    };
  };
  return { prepare, runners };
}
