// The environment triggers settle in: the bus handles, metrics and the part of the trigger
// context that does not depend on the call, built once per Sensor; `envFor` binds the payload and
// parameter helpers to the events of one call. Every secret value resolved for a trigger is
// registered with the Sensor's redactor, so error text can be cleaned of it.
import type { KubeConfig } from '@kubernetes/client-node';
import type { SecretKeySelector } from '../api/k8s.ts';
import type { ProcessedSet } from '../bus/kv.ts';
import type { Publisher } from '../bus/publisher.ts';
import type { Logger } from '../observability/logger.ts';
import { Claims } from './claims.ts';
import type { FastPath } from './fast-path.ts';
import type { SensorMetrics } from './metrics.ts';
import type { SensorRuntimeOptions } from './options.ts';
import { Redactor } from './redact.ts';
import type { SettleEnv } from './settle.ts';
import type { EventsByDependency } from './triggers/trigger.ts';

/** A Sensor's settle environment and its per-call binding. */
export interface SensorEnv {
  env: SettleEnv;
  /** `env` with buildPayload/applyParameters bound to `events` (one small object per call). */
  envFor(events: EventsByDependency): SettleEnv;
  /** Removes every secret value resolved so far from `text`. */
  redact(text: string): string;
  kubeConfig(): KubeConfig;
}

export function sensorEnv(
  o: SensorRuntimeOptions,
  parts: {
    processed: ProcessedSet;
    publisher: Publisher;
    metrics: SensorMetrics;
    log: Logger;
    signal: AbortSignal;
    callSignal: AbortSignal;
    fastPath?: FastPath;
  },
): SensorEnv {
  const { log } = parts;
  const kubeConfig = (): KubeConfig => {
    if (!o.kubeConfig) throw new Error('this trigger needs Kubernetes access, and none is configured');
    return o.kubeConfig();
  };
  const redactor = new Redactor((m) => log.warn(m));
  const resolveSecret = async (sel: SecretKeySelector) => {
    const v = await o.resolveSecret(sel);
    redactor.add(v);
    return v;
  };
  const redact = (s: string) => redactor.redact(s);
  const env: SettleEnv = {
    namespace: o.namespace,
    sensorName: o.name,
    bus: o.bus,
    processed: parts.processed,
    // A claim left by a process that died expires with the ack_wait that brings its message back.
    claims: new Claims(
      parts.processed,
      o.identity ? `${o.identity}/${process.pid}` : undefined,
      o.ackWaitMs ?? 30_000,
    ),
    publisher: parts.publisher,
    metrics: parts.metrics,
    signal: parts.signal,
    callSignal: parts.callSignal,
    redact,
    ...(parts.fastPath ? { fastPath: parts.fastPath } : {}),
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
  const envFor = (events: EventsByDependency): SettleEnv => ({
    ...env,
    context: {
      ...env.context,
      buildPayload: (params) => o.params.buildPayload(params, events),
      applyParameters: (target, params) => o.params.applyParameters(target, params, events),
    },
  });
  return { env, envFor, redact, kubeConfig };
}
