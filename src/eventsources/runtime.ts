// Runs one EventSource: starts an adapter per event entry, wraps what they emit in CloudEvents,
// applies `filter.expression`, and publishes to the bus. Webhook-style adapters share one HTTP
// server per port. Exclusive adapters (schedules, watches, broker subscriptions) run in only one
// replica when `replicas > 1`, chosen by a Lease.
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import { SOURCE_TYPES } from '../api/eventsource/index.ts';
import type { EventSourceSpec } from '../api/eventsource.ts';
import type { SecretKeySelector } from '../api/k8s.ts';
import { BusError } from '../bus/errors.ts';
import type { Publisher } from '../bus/publisher.ts';
import { type BusRef, eventSubject } from '../bus/subjects.ts';
import { LeaderElector } from '../controller/leader.ts';
import type { Logger } from '../observability/logger.ts';
import type { EmitOptions, EmitResult, SourceAdapter, SourceContext, StartedSource } from './adapter.ts';
import { loadAdapter } from './adapters.ts';
import { publishConfirmed } from './confirm.ts';
import { encodeEvent, envelope } from './envelope.ts';
import { publishableId } from './event-id.ts';
import { validDate } from './fields.ts';
import { compileFilter, type EventFilter } from './filter.ts';
import { eventSourceMetrics } from './metrics.ts';
import { DEFAULT_HIDDEN_HEADERS, DEFAULT_ID_HEADERS } from './webhook/headers.ts';
import { UnconfirmedIds } from './webhook/identity.ts';
import { defaultLimits, type WebhookLimits } from './webhook/limits.ts';
import { keepLocally, type LocalIds } from './webhook/local-ids.ts';
import { webhookMetrics } from './webhook/metrics.ts';
import { processBounds, WebhookServer } from './webhook/server.ts';
import { type SharedIds, shareUnconfirmed } from './webhook/shared-ids.ts';

export { DEFAULT_MAX_PAYLOAD } from './webhook/server.ts';

/**
 * Publishes unsettled this long (ms) mean the bus is slow to confirm: webhook id records then go
 * before their events (webhook/identity.ts).
 */
const BUS_SLOW_MS = 50;

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

export interface RunningEventSource {
  /** Actual listening port for each configured port (differs when "0" was configured). */
  ports: Map<string, number>;
  /** Source types in the spec that this build does not run. */
  unsupported: string[];
  /** Why a running source cannot consume now (see SourceContext.degraded), or undefined. */
  notReady(): string | undefined;
  stop(): Promise<void>;
}

interface Entry {
  type: string;
  eventName: string;
  spec: Record<string, unknown>;
  adapter: SourceAdapter<unknown>;
}

/** The event's bytes; a BusError `Invalid` (not retryable: the same input fails again) when it cannot be encoded. */
function encodeOrRefuse(ce: Parameters<typeof encodeEvent>[0]): Uint8Array {
  try {
    return encodeEvent(ce);
  } catch (err) {
    throw new BusError('Invalid', `the event cannot be encoded: ${(err as Error).message}`);
  }
}

export async function startEventSource(o: EventSourceRuntimeOptions): Promise<RunningEventSource> {
  const labels = { namespace: o.namespace, eventsource_name: o.name };
  const { sent, sentFailed, processingFailed, filteredOut, duration, running } = eventSourceMetrics(
    o.registry,
  );

  // Collect the entries; unknown types are reported, not fatal (the controller also says so).
  const entries: Entry[] = [];
  const unsupported: string[] = [];
  const spec = o.spec as unknown as Record<string, Record<string, Record<string, unknown>> | undefined>;
  for (const type of SOURCE_TYPES) {
    const events = spec[type];
    if (!events || Object.keys(events).length === 0) continue;
    const adapter = await loadAdapter(type);
    if (!adapter) {
      unsupported.push(type);
      o.log.warn({ type }, 'source type not run by this build; its events are not produced');
      continue;
    }
    for (const [eventName, entrySpec] of Object.entries(events)) {
      entries.push({ type, eventName, spec: entrySpec, adapter });
    }
  }

  const limits: WebhookLimits = {
    ...(o.limits ?? defaultLimits()),
    ...(o.maxInFlight ? { maxInFlight: o.maxInFlight } : {}),
  };
  const identities = new UnconfirmedIds(o.duplicatesWindowMs ?? 120_000);
  const bounds = processBounds(limits);
  const servers = new Map<string, WebhookServer>();
  let sharing: SharedIds | undefined;
  let local: LocalIds | undefined;
  const webhooks = {
    addRoute(port: string, route: Parameters<WebhookServer['addRoute']>[0]) {
      let server = servers.get(port);
      if (!server) {
        server = new WebhookServer({
          port: Number(port),
          ...(o.host ? { host: o.host } : {}),
          limits,
          bounds,
          hiddenHeaders: o.hiddenHeaders ?? DEFAULT_HIDDEN_HEADERS,
          idHeaders: o.idHeaders ?? DEFAULT_ID_HEADERS,
          identities,
          unhealthy: () => o.publisher.wedged(),
          busSlow: () => o.publisher.stalledMs() > BUS_SLOW_MS || o.publisher.queued > 0,
          beforeCut: async () => {
            local?.save();
            await sharing?.flush(1_000);
          },
          log: o.log.child({ port }),
          onResult: (event, status) => {
            if (status >= 400 && status !== 503) {
              processingFailed.inc({ ...labels, event_name: event ?? '', status: String(status) });
            }
          },
        });
        servers.set(port, server);
        if (servers.size === 1) webhookMetrics(o.registry, bounds);
      }
      server.addRoute(route);
    },
  };
  const kubeConfig = () => {
    if (!o.kubeConfig) throw new Error('this source needs Kubernetes access, and none is configured');
    return o.kubeConfig();
  };

  const problems = new Map<string, string>();
  const contextFor = (e: Entry, signal: AbortSignal): SourceContext<unknown> => {
    const filterSpec = e.spec.filter as { expression?: string } | undefined;
    const filter: EventFilter | undefined = filterSpec?.expression
      ? compileFilter(filterSpec.expression)
      : undefined;
    const ev = { ...labels, event_name: e.eventName };
    const subject = eventSubject(o.bus, o.name, e.eventName);
    const log = o.log.child({ source: e.type, event: e.eventName });
    return {
      namespace: o.namespace,
      eventSourceName: o.name,
      eventName: e.eventName,
      type: e.type,
      spec: e.spec,
      signal,
      log,
      nc: o.nc,
      bus: o.bus,
      resolveSecret: o.resolveSecret,
      webhooks,
      kubeConfig,
      processingFailed: (reason) => processingFailed.inc({ ...ev, status: reason }),
      degraded: (problem) => {
        const key = `${e.type}/${e.eventName}`;
        if (problem === undefined) problems.delete(key);
        else problems.set(key, problem);
      },
      async emit(data: unknown, opts: EmitOptions = {}): Promise<EmitResult> {
        const start = performance.now();
        if (filter && !filter.matches(data)) {
          filteredOut.inc(ev);
          return 'filtered';
        }
        const ce = envelope({
          // An id from outside that cannot travel in a NATS header becomes a digest of itself.
          ...(opts.id ? { id: publishableId(opts.id) } : {}),
          source: o.name,
          type: e.type,
          subject: e.eventName,
          data,
          // A source's out-of-range time (an invalid Date) falls back to now, never throws.
          ...(validDate(opts.time) ? { time: opts.time } : {}),
          ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
          ...(opts.datacontenttype ? { datacontenttype: opts.datacontenttype } : {}),
        });
        try {
          await publishConfirmed(
            o.publisher,
            subject,
            encodeOrRefuse(ce),
            {
              msgId: `${o.name}/${e.eventName}/${ce.id}`,
              headers: { traceparent: ce.traceparent, 'ce-id': ce.id },
            },
            { deadlineMs: limits.publishDeadlineMs, closed: () => o.nc.isClosed() },
          );
        } catch (err) {
          sentFailed.inc(ev);
          log.warn({ id: ce.id, err: (err as Error).message }, 'event not published; source told to retry');
          throw err;
        }
        sent.inc(ev);
        duration.observe(ev, performance.now() - start);
        return 'published';
      },
    };
  };

  const startAll = async (list: Entry[], signal: AbortSignal): Promise<StartedSource[]> => {
    const started: StartedSource[] = [];
    try {
      for (const e of list) {
        started.push(await e.adapter.start(contextFor(e, signal)));
        running.inc({ ...labels, event_type: e.type });
      }
    } catch (err) {
      await Promise.allSettled(started.map((s) => s.stop()));
      throw err;
    }
    return started;
  };

  // Shared sources start now; exclusive ones now too unless several replicas compete for them.
  const replicas = o.spec.replicas ?? 1;
  const exclusive = entries.filter((e) => e.adapter.exclusive);
  const elect = replicas > 1 && exclusive.length > 0;
  const lifetime = new AbortController();
  const shared = await startAll(
    elect ? entries.filter((e) => !e.adapter.exclusive) : entries,
    lifetime.signal,
  );

  if (servers.size > 0) {
    const file = join(o.stateDir ?? tmpdir(), `sluice-webhook-ids-${o.namespace}-${o.name}.json`);
    local = keepLocally(identities, file, o.log);
  }
  sharing =
    servers.size > 0
      ? await shareUnconfirmed(
          { ...o, ...(o.duplicatesWindowMs ? { windowMs: o.duplicatesWindowMs } : {}) },
          identities,
        )
      : undefined;
  const ports = new Map<string, number>();
  for (const [port, server] of servers) {
    await server.start();
    ports.set(port, server.port);
    o.log.info({ port: server.port }, 'webhook server listening');
  }

  let elector: LeaderElector | undefined;
  let leading: Promise<StartedSource[]> | undefined;
  if (elect) {
    elector = new LeaderElector({
      kubeConfig: kubeConfig(),
      namespace: o.leaseNamespace ?? o.namespace,
      name: `${o.name}-eventsource`,
      ...(o.leaseDurationMs ? { leaseDurationMs: o.leaseDurationMs } : {}),
      ...(o.renewDeadlineMs ? { renewDeadlineMs: o.renewDeadlineMs } : {}),
      ...(o.retryPeriodMs ? { retryPeriodMs: o.retryPeriodMs } : {}),
      identity: o.identity ?? `${hostname()}-${process.pid}`,
      logger: o.log,
      onStartedLeading: (signal) => {
        o.log.info(
          { sources: exclusive.map((e) => `${e.type}/${e.eventName}`) },
          'leading: starting sources',
        );
        leading = startAll(exclusive, signal);
        signal.addEventListener(
          'abort',
          () => {
            const was = leading;
            leading = undefined;
            void was?.then((s) => Promise.allSettled(s.map((x) => x.stop())));
          },
          { once: true },
        );
      },
    });
    elector.start();
  }

  return {
    ports,
    unsupported,
    notReady: () => (problems.size ? [...problems].map(([k, why]) => `${k}: ${why}`).join('; ') : undefined),
    async stop() {
      lifetime.abort();
      await Promise.all([...servers.values()].map((s) => s.stop()));
      // What was answered without a confirmed store must outlive this process (see shared-ids.ts;
      // the servers flushed already before their last 503s, this is what came after).
      await sharing?.flush(500);
      sharing?.stop();
      local?.stop();
      const stopping = [...shared];
      if (leading) stopping.push(...(await leading.catch(() => [])));
      await Promise.allSettled(stopping.map((s) => s.stop()));
      await elector?.stop();
    },
  };
}
