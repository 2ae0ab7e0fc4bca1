// Runs one EventSource: starts an adapter per event entry, wraps what they emit in CloudEvents,
// applies `filter.expression`, and publishes to the bus. Webhook-style adapters share one HTTP
// server per port. Exclusive adapters (schedules, watches, broker subscriptions) run in only one
// replica when `replicas > 1`, chosen by a Lease. Read top-down, `startEventSource` is:
//   entries.ts    which entries the spec has, and their adapters
//   context.ts    what each adapter is started with; its `emit` is emit.ts (filter, envelope,
//                 confirmed publish, metrics)
//   webhook/ports.ts  the HTTP servers of the webhook-style entries, and their request-id memory
//   leading.ts    exclusive entries under leader election
// and `stop` undoes them in the opposite order.
import type { KubeConfig } from '@kubernetes/client-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import type { EventSourceSpec } from '../api/eventsource.ts';
import type { SecretKeySelector } from '../api/k8s.ts';
import type { Publisher } from '../bus/publisher.ts';
import type { BusRef } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import { kubeAccess, SourceProblems, sourceContext } from './context.ts';
import { collectEntries, type SourceEntry, startEntries, stopAll } from './entries.ts';
import { leadExclusive } from './leading.ts';
import { eventSourceMetrics } from './metrics.ts';
import { DEFAULT_HIDDEN_HEADERS, DEFAULT_ID_HEADERS } from './webhook/headers.ts';
import { defaultLimits, type WebhookLimits } from './webhook/limits.ts';
import { WebhookPorts } from './webhook/ports.ts';

export { DEFAULT_MAX_PAYLOAD } from './webhook/server.ts';

/** What `startEventSource` runs, and the bus, registry, logger and bounds it runs it with. */
export interface EventSourceRuntimeOptions {
  name: string;
  namespace: string;
  spec: EventSourceSpec;
  bus: BusRef;
  publisher: Publisher;
  /** The bus connection (KV state for adapters that persist, e.g. calendar). */
  nc: NatsConnection;
  registry: Registry;
  log: Logger;
  /** Reads a Secret key (the pod's API access, or a stand-in in tests). */
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  /** Kubernetes access for resource sources and leader election; absent outside a cluster. */
  kubeConfig?: () => KubeConfig;
  /** Lease identity when `replicas > 1` (default: hostname + pid). */
  identity?: string;
  /** Namespace of the Lease (default: the EventSource's). */
  leaseNamespace?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Bounds of the webhook servers and the publish deadline (default: limits.ts defaults). */
  limits?: WebhookLimits;
  /** Requests waiting for the bus at once per webhook port before 429 (overrides limits). */
  maxInFlight?: number;
  /** Request headers masked in published events (default: DEFAULT_HIDDEN_HEADERS). */
  hiddenHeaders?: readonly string[];
  /** Request headers whose value is a webhook event's id (default: DEFAULT_ID_HEADERS). */
  idHeaders?: readonly string[];
  /** How long the bus drops a repeated Nats-Msg-Id (ms); read from the stream when absent. */
  duplicatesWindowMs?: number;
  /** Bind address for webhook servers (default 0.0.0.0). */
  host?: string;
  /** Directory for the local copy of unconfirmed webhook request ids (default: the OS temp dir). */
  stateDir?: string;
}

/** A running EventSource. */
export interface RunningEventSource {
  /** Actual listening port for each configured port (differs when "0" was configured). */
  ports: Map<string, number>;
  /** Source types in the spec that this build does not run. */
  unsupported: string[];
  /** Why a running source cannot consume now (see SourceContext.degraded), or undefined. */
  notReady(): string | undefined;
  /**
   * Stops the sources (their signal aborts), the webhook servers within their grace period (the
   * ids of requests still unconfirmed are kept, see webhook/ports.ts), then leaves the election.
   */
  stop(): Promise<void>;
}

/** The bounds of the webhook servers: `limits` (or the defaults) with `maxInFlight` over them. */
function webhookLimits(o: Pick<EventSourceRuntimeOptions, 'limits' | 'maxInFlight'>): WebhookLimits {
  return { ...(o.limits ?? defaultLimits()), ...(o.maxInFlight ? { maxInFlight: o.maxInFlight } : {}) };
}

/**
 * Starts the EventSource `o.name`: every entry this build runs (shared ones now, exclusive ones
 * only while this replica leads when `replicas > 1`), then its webhook ports. Rejects when an
 * adapter fails to start (those started already are stopped), when a webhook port cannot be
 * bound, or when leader election is needed and there is no Kubernetes access.
 */
export async function startEventSource(o: EventSourceRuntimeOptions): Promise<RunningEventSource> {
  const metrics = eventSourceMetrics(o.registry);
  const { entries, unsupported } = await collectEntries(o.spec, o.log);
  const limits = webhookLimits(o);
  const webhooks = new WebhookPorts({
    ...o,
    limits,
    hiddenHeaders: o.hiddenHeaders ?? DEFAULT_HIDDEN_HEADERS,
    idHeaders: o.idHeaders ?? DEFAULT_ID_HEADERS,
    processingFailed: metrics.processingFailed,
  });
  const kubeConfig = kubeAccess(o.kubeConfig);
  const problems = new SourceProblems();
  const common = {
    ...o,
    kubeConfig,
    webhooks,
    problems,
    metrics,
    publishDeadlineMs: limits.publishDeadlineMs,
  };
  const start = (list: readonly SourceEntry[], signal: AbortSignal) =>
    startEntries(
      list,
      (e, sig) => sourceContext(common, e, sig),
      signal,
      (e) => metrics.running.inc({ namespace: o.namespace, eventsource_name: o.name, event_type: e.type }),
    );

  // Shared sources start now; exclusive ones now too unless several replicas compete for them.
  const exclusive = entries.filter((e) => e.adapter.exclusive);
  const elect = (o.spec.replicas ?? 1) > 1 && exclusive.length > 0;
  const lifetime = new AbortController();
  const always = await start(elect ? entries.filter((e) => !e.adapter.exclusive) : entries, lifetime.signal);
  const ports = await webhooks.start();
  const leading = elect ? leadExclusive({ ...o, kubeConfig }, exclusive, start, lifetime.signal) : undefined;

  return {
    ports,
    unsupported,
    notReady: () => problems.summary(),
    async stop() {
      lifetime.abort();
      await webhooks.stop();
      await stopAll([...always, ...((await leading?.sources()) ?? [])]);
      await leading?.stop();
    },
  };
}
