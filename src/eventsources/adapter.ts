// The contract between the EventSource runtime and one source type's adapter. An adapter is
// started once per event name (one entry of `spec.<type>`), receives what it needs in a
// SourceContext, and hands every outside happening to `emit`, which filters, wraps it in a
// CloudEvent and resolves only once the bus has stored it. An adapter acknowledges its source
// (broker ack, HTTP 2xx, persisted cursor) only after `emit` resolved, so nothing accepted is lost.
import type { KubeConfig } from '@kubernetes/client-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SecretKeySelector } from '../api/k8s.ts';
import type { BusRef } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import type { WebhookRoute } from './webhook/route.ts';

export interface EmitOptions {
  /**
   * Stable id of this happening (delivery id, broker message id, fire time). A repeated emit with
   * the same id inside the bus's duplicates window stores one message. Random when absent.
   */
  id?: string;
  /** When it happened (defaults to now). */
  time?: Date;
  /** W3C trace context from the sender, if any. */
  traceparent?: string;
  datacontenttype?: string;
}

/** `filtered`: `filter.expression` was false, nothing published (the source may still ack). */
export type EmitResult = 'published' | 'filtered';

/** Webhook-style adapters register their endpoint on the EventSource's shared HTTP server(s). */
export interface WebhookHost {
  /** Adds a route on the server for `port` (created on first use, started after all adapters). */
  addRoute(port: string, route: WebhookRoute): void;
}

export interface SourceContext<S = unknown> {
  namespace: string;
  eventSourceName: string;
  /** Key of this entry under `spec.<type>`; the subject's last token. */
  eventName: string;
  type: string;
  /** This entry's settings, as parsed by the schema. */
  spec: S;
  /** Aborted when the source must stop (shutdown, or leadership lost for exclusive sources). */
  signal: AbortSignal;
  log: Logger;
  /** Filters, wraps and publishes; resolves after the PubAck; rejects with a BusError. */
  emit(data: unknown, opts?: EmitOptions): Promise<EmitResult>;
  /** Counts a source-side failure (bad message, lost connection) for the upstream metric. */
  processingFailed(reason: string): void;
  /**
   * Reports that this source cannot consume right now (`problem`, e.g. "kafka consumer stopped;
   * restarting in 4 s") or, with undefined, that it consumes again. While any source of the
   * EventSource has a problem, the process's /readyz answers not ready with it.
   */
  degraded(problem: string | undefined): void;
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  webhooks: WebhookHost;
  /** Kubernetes access (in-cluster, or the current kubeconfig); throws when there is none. */
  kubeConfig(): KubeConfig;
  /** The bus connection, e.g. for JetStream KV state such as calendar persistence. */
  nc: NatsConnection;
  bus: BusRef;
}

export interface StartedSource {
  /** Stops receiving; in-flight emits finish first. */
  stop(): Promise<void>;
}

export interface SourceAdapter<S = unknown> {
  type: string;
  /**
   * True when two running copies would produce the same events twice (schedules, watches,
   * broker subscriptions without consumer groups). With `replicas > 1` such sources run only in
   * the replica that holds the EventSource's Lease.
   */
  exclusive: boolean;
  start(ctx: SourceContext<S>): Promise<StartedSource>;
}
