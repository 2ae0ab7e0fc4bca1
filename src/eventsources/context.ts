// The SourceContext each adapter is started with (adapter.ts), and what the contexts of one
// EventSource share: its webhook ports, its Kubernetes access and the problems its sources report.
import type { KubeConfig } from '@kubernetes/client-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SecretKeySelector } from '../api/k8s.ts';
import type { Publisher } from '../bus/publisher.ts';
import { type BusRef, eventSubject } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import type { SourceContext, WebhookHost } from './adapter.ts';
import { entryEmitter } from './emit.ts';
import type { SourceEntry } from './entries.ts';
import type { EventSourceMetrics } from './metrics.ts';

/**
 * What the sources of an EventSource report they cannot do now (SourceContext.degraded), by
 * `type/eventName`; read by the readiness probe.
 */
export class SourceProblems {
  private readonly problems = new Map<string, string>();

  /** Records (`problem`) or clears (undefined) the problem of the source `key`. */
  set(key: string, problem: string | undefined): void {
    if (problem === undefined) this.problems.delete(key);
    else this.problems.set(key, problem);
  }

  /** "key: problem; key: problem", or undefined when no source has one. */
  summary(): string | undefined {
    return this.problems.size ? [...this.problems].map(([k, why]) => `${k}: ${why}`).join('; ') : undefined;
  }
}

/** Kubernetes access from `provide`; throws an Error saying so when there is none (outside a cluster). */
export function kubeAccess(provide: (() => KubeConfig) | undefined): () => KubeConfig {
  return () => {
    if (!provide) throw new Error('this source needs Kubernetes access, and none is configured');
    return provide();
  };
}

/** What every context of one EventSource shares. */
export interface ContextShared {
  name: string;
  namespace: string;
  bus: BusRef;
  nc: NatsConnection;
  publisher: Publisher;
  log: Logger;
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  kubeConfig(): KubeConfig;
  webhooks: WebhookHost;
  problems: SourceProblems;
  metrics: EventSourceMetrics;
  /** How long (ms) one event may take to be confirmed by the bus (WebhookLimits.publishDeadlineMs). */
  publishDeadlineMs: number;
}

/**
 * The context for entry `e`, aborted through `signal`. Compiles the entry's `filter.expression`
 * (throws FilterError when it is invalid).
 */
export function sourceContext(s: ContextShared, e: SourceEntry, signal: AbortSignal): SourceContext<unknown> {
  const labels = { namespace: s.namespace, eventsource_name: s.name, event_name: e.eventName };
  const log = s.log.child({ source: e.type, event: e.eventName });
  const failed = s.metrics.processingFailed;
  const key = `${e.type}/${e.eventName}`;
  return {
    namespace: s.namespace,
    eventSourceName: s.name,
    eventName: e.eventName,
    type: e.type,
    spec: e.spec,
    signal,
    log,
    nc: s.nc,
    bus: s.bus,
    resolveSecret: s.resolveSecret,
    webhooks: s.webhooks,
    kubeConfig: s.kubeConfig,
    processingFailed: (reason) => failed.inc({ ...labels, status: reason }),
    degraded: (problem) => s.problems.set(key, problem),
    emit: entryEmitter({
      eventSourceName: s.name,
      type: e.type,
      eventName: e.eventName,
      filterExpression: (e.spec.filter as { expression?: string } | undefined)?.expression,
      busSubject: eventSubject(s.bus, s.name, e.eventName),
      publisher: s.publisher,
      publishDeadlineMs: s.publishDeadlineMs,
      closed: () => s.nc.isClosed(),
      metrics: s.metrics,
      labels,
      log,
    }),
  };
}
