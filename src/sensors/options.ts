// The Sensor runtime's inputs and outputs: what startSensor is given (spec, bus connection,
// trigger runners, dependency compiler, secret resolvers, tuning) and what it returns.
import type { KubeConfig } from '@kubernetes/client-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import type { ConfigMapKeySelector, SecretKeySelector } from '../api/k8s.ts';
import type { EventDependency, SensorSpec, TriggerParameter } from '../api/sensor.ts';
import type { BusRef } from '../bus/subjects.ts';
import type { CloudEvent } from '../eventsources/envelope.ts';
import type { Logger } from '../observability/logger.ts';
import type { SensorMetrics } from './metrics.ts';
import type { Sandbox, SandboxLimits } from './sandbox/pool.ts';
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

/** Default of SensorRuntimeOptions.drainMs (ms). */
export const DEFAULT_DRAIN_MS = 20_000;

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
  /**
   * On stop, how long trigger calls already under way may run before they are aborted (default
   * 20 s, DEFAULT_DRAIN_MS: inside the pod's default 30 s grace, with room to close). Stopping
   * never starts a retry or a wait; it lets a call finish so its effect is recorded and acked,
   * rather than cut it after the receiver may have acted on it (which would repeat it, under the
   * same idempotency key, on the next process).
   */
  drainMs?: number;
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
  /**
   * Let a first delivery of a new key skip the processed-set claim (fast-path.ts; default true).
   * False: every trigger call claims its key first, as before issue 16.
   */
  fastPath?: boolean;
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
  /**
   * The done-key index (done-index.ts), for diagnostics and tests: whether it has read the
   * processed bucket, and whether KV-encoded key `k` may have been written.
   */
  doneIndex: { readonly ready: boolean; mightHave(k: string): boolean };
  stop(): Promise<void>;
}
