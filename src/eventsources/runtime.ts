// Runs one EventSource: starts its adapters, wraps what they receive in CloudEvents and publishes
// to the bus. This build runs the `webhook` type; other types are accepted by the schema and
// reported by the controller (see supported.ts).
import { Counter, Histogram, type Registry } from 'prom-client';
import type { EventSourceSpec } from '../api/eventsource.ts';
import type { SecretKeySelector } from '../api/k8s.ts';
import type { Publisher } from '../bus/publisher.ts';
import { type BusRef, eventSubject } from '../bus/subjects.ts';
import type { Logger } from '../observability/logger.ts';
import { encodeEvent, envelope } from './envelope.ts';
import { type WebhookDelivery, WebhookServer } from './webhook/server.ts';

export const DEFAULT_MAX_PAYLOAD = 1_048_576;

export interface EventSourceRuntimeOptions {
  name: string;
  namespace: string;
  spec: EventSourceSpec;
  bus: BusRef;
  publisher: Publisher;
  registry: Registry;
  log: Logger;
  /** Reads a Secret key (the pod's API access, or a stand-in in tests). */
  resolveSecret(sel: SecretKeySelector): Promise<string>;
  /** Requests handled at once per webhook port before answering 429 (default 2048). */
  maxInFlight?: number;
  /** Bind address for webhook servers (default 0.0.0.0). */
  host?: string;
}

export interface RunningEventSource {
  /** Actual listening port for each configured port (differs when "0" was configured). */
  ports: Map<string, number>;
  stop(): Promise<void>;
}

export async function startEventSource(o: EventSourceRuntimeOptions): Promise<RunningEventSource> {
  const labels = { namespace: o.namespace, eventsource_name: o.name };
  const sent = new Counter({
    name: 'argo_events_events_sent_total',
    help: 'Events published to the bus.',
    labelNames: ['namespace', 'eventsource_name', 'event_name'],
    registers: [o.registry],
  });
  const sentFailed = new Counter({
    name: 'argo_events_events_sent_failed_total',
    help: 'Events that could not be published (the sender was told to retry).',
    labelNames: ['namespace', 'eventsource_name', 'event_name'],
    registers: [o.registry],
  });
  const processingFailed = new Counter({
    name: 'argo_events_events_processing_failed_total',
    help: 'Requests rejected before publishing (bad input, auth, size, capacity).',
    labelNames: ['namespace', 'eventsource_name', 'event_name', 'status'],
    registers: [o.registry],
  });
  const duration = new Histogram({
    name: 'argo_events_event_processing_duration_milliseconds',
    help: 'Time from receiving an event to the bus confirming it.',
    labelNames: ['namespace', 'eventsource_name', 'event_name'],
    buckets: [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers: [o.registry],
  });
  const running = new Counter({
    name: 'argo_events_event_service_running_total',
    help: 'Event services started, by source type.',
    labelNames: ['namespace', 'eventsource_name', 'event_type'],
    registers: [o.registry],
  });

  const accept = async (d: WebhookDelivery): Promise<void> => {
    const start = performance.now();
    const ev = envelope({
      ...(d.id ? { id: d.id } : {}),
      source: o.name,
      type: 'webhook',
      subject: d.eventName,
      data: d.data,
      ...(d.traceparent ? { traceparent: d.traceparent } : {}),
    });
    try {
      await o.publisher.publish(eventSubject(o.bus, o.name, d.eventName), encodeEvent(ev), {
        msgId: `${o.name}/${d.eventName}/${ev.id}`,
        headers: { traceparent: ev.traceparent, 'ce-id': ev.id },
      });
      sent.inc({ ...labels, event_name: d.eventName });
      duration.observe({ ...labels, event_name: d.eventName }, performance.now() - start);
    } catch (err) {
      sentFailed.inc({ ...labels, event_name: d.eventName });
      o.log.warn(
        { event: d.eventName, id: ev.id, err: (err as Error).message },
        'event not published; sender told to retry',
      );
      throw err;
    }
  };

  const servers = new Map<string, WebhookServer>();
  for (const [eventName, w] of Object.entries(o.spec.webhook ?? {})) {
    let server = servers.get(w.port);
    if (!server) {
      server = new WebhookServer({
        port: Number(w.port),
        ...(o.host ? { host: o.host } : {}),
        maxInFlight: o.maxInFlight ?? 2048,
        accept,
        onResult: (event, status) => {
          if (status >= 400 && status !== 503) {
            processingFailed.inc({ ...labels, event_name: event ?? '', status: String(status) });
          }
        },
      });
      servers.set(w.port, server);
    }
    server.addRoute({
      eventName,
      endpoint: w.endpoint,
      method: w.method,
      maxPayloadSize: w.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD,
      ...(w.authSecret ? { authToken: (await o.resolveSecret(w.authSecret)).trim() } : {}),
      ...(w.metadata ? { metadata: w.metadata } : {}),
    });
    running.inc({ ...labels, event_type: 'webhook' });
  }
  const ports = new Map<string, number>();
  for (const [port, server] of servers) {
    await server.start();
    ports.set(port, server.port);
    o.log.info({ port: server.port }, 'webhook server listening');
  }
  return {
    ports,
    async stop() {
      await Promise.all([...servers.values()].map((s) => s.stop()));
    },
  };
}
