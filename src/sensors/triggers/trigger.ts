// The contract between the Sensor runtime and one trigger type. The runtime has already matched
// the dependencies, resolved the trigger-level `parameters` into the template, rate-limited and
// circuit-broken the call; a trigger only performs the effect once and reports how it went.
// Retries, dead-lettering and acking are the runtime's business, never the trigger's.
import type { KubeConfig } from '@kubernetes/client-node';
import type { ConfigMapKeySelector, SecretKeySelector } from '../../api/k8s.ts';
import type { TriggerParameter } from '../../api/sensor.ts';
import type { CloudEvent } from '../../eventsources/envelope.ts';
import type { Logger } from '../../observability/logger.ts';

/** The events that satisfied the trigger's conditions, by dependency name (after transform). */
export type EventsByDependency = Readonly<Record<string, CloudEvent>>;

export interface TriggerContext {
  namespace: string;
  sensorName: string;
  triggerName: string;
  /**
   * Same for every attempt, redelivery and replay of the same events: pass it downstream
   * (HTTP `Idempotency-Key`, `Nats-Msg-Id`, deterministic object names) so a repeat is harmless.
   */
  idempotencyKey: string;
  /** 1 for the first attempt. */
  attempt: number;
  events: EventsByDependency;
  /** W3C trace context of the (first) triggering event. */
  traceparent?: string;
  /** Aborted when the attempt must end (shutdown, or the attempt timed out). */
  signal: AbortSignal;
  log: Logger;
  /** Builds a JSON payload from `payload` parameters (starting from `{}`). */
  buildPayload(params: readonly TriggerParameter[] | undefined): unknown;
  /** Returns a copy of `target` with parameters applied (for k8s/argoWorkflow objects). */
  applyParameters<T>(target: T, params: readonly TriggerParameter[] | undefined): T;
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  resolveConfigMap(sel: ConfigMapKeySelector): Promise<string>;
  /** Kubernetes access; throws a clear error when there is none (e.g. `sluice dev` without kubeconfig). */
  kubeConfig(): KubeConfig;
}

export interface TriggerResult {
  /** Short human-readable outcome for logs and the DLQ record, e.g. "HTTP 201". */
  detail: string;
}

export type TriggerErrorCode =
  | 'Transient' // network errors, 5xx, 408, 429, timeouts: retry may help
  | 'Rejected' // the target refused this input (4xx): retrying the same request will not help
  | 'Misconfigured' // the trigger spec cannot work (bad URL, missing Secret key): do not retry
  | 'Unsupported';

export class TriggerError extends Error {
  readonly code: TriggerErrorCode;
  readonly retryable: boolean;
  /** From a `Retry-After` answer: wait at least this long before the next attempt. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: TriggerErrorCode,
    message: string,
    opts: { retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TriggerError';
    this.code = code;
    this.retryable = code === 'Transient';
    this.retryAfterMs = opts.retryAfterMs;
  }
}

export interface TriggerRunner<S = unknown> {
  /** Key under `template`, e.g. "http". */
  type: string;
  /**
   * Performs the effect once. Resolves on success; throws TriggerError (any other error counts
   * as Transient). `policy` is the trigger's policy block (e.g. `status.allow` for http).
   */
  fire(spec: S, ctx: TriggerContext, policy?: unknown): Promise<TriggerResult>;
  /** Releases connections/clients the runner keeps between calls. */
  close?(): Promise<void>;
}
