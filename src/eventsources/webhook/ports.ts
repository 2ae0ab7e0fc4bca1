// The webhook ports of one EventSource: the HTTP server of each port its webhook-style sources
// registered a route on (created on first use, see server.ts), and the memory of unconfirmed
// request ids they share (identity.ts), kept in a local file (local-ids.ts) and on the bus
// (shared-ids.ts) so a retry after an ambiguous answer is the same event in this process, the
// next one, and the other replicas.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Counter, Registry } from 'prom-client';
import type { Publisher } from '../../bus/publisher.ts';
import type { BusRef } from '../../bus/subjects.ts';
import type { Logger } from '../../observability/logger.ts';
import type { WebhookHost } from '../adapter.ts';
import { UnconfirmedIds } from './identity.ts';
import type { WebhookLimits } from './limits.ts';
import { keepLocally, type LocalIds } from './local-ids.ts';
import { webhookMetrics } from './metrics.ts';
import type { WebhookRoute } from './route.ts';
import { type ProcessBounds, processBounds, WebhookServer } from './server.ts';
import { type SharedIds, shareUnconfirmed } from './shared-ids.ts';

/**
 * Publishes unsettled this long (ms) mean the bus is slow to confirm: webhook id records then go
 * before their events (identity.ts).
 */
const BUS_SLOW_MS = 50;

export interface WebhookPortsOptions {
  /** The EventSource's name and namespace (the id bucket and the local file are named after them). */
  name: string;
  namespace: string;
  bus: BusRef;
  nc: NatsConnection;
  /** Its health (wedged: /health answers 503) and pace (slow: id records go first) shape the answers. */
  publisher: Publisher;
  registry: Registry;
  log: Logger;
  limits: WebhookLimits;
  /** Bind address (default 0.0.0.0). */
  host?: string | undefined;
  /** Request headers masked in published events (lower case). */
  hiddenHeaders: readonly string[];
  /** Request headers whose value is a webhook event's id (lower case). */
  idHeaders: readonly string[];
  /** The bus's duplicates window (ms); read from the stream at start when absent. */
  duplicatesWindowMs?: number | undefined;
  /** Directory of the local copy of unconfirmed request ids (default: the OS temp dir). */
  stateDir?: string | undefined;
  /** argo_events_events_processing_failed_total: every answer >= 400 but 503 is counted in it. */
  processingFailed: Counter<'namespace' | 'eventsource_name' | 'event_name' | 'status'>;
}

/** The webhook servers of one EventSource (a WebhookHost for its adapters). */
export class WebhookPorts implements WebhookHost {
  private readonly o: WebhookPortsOptions;
  private readonly servers = new Map<string, WebhookServer>();
  private readonly identities: UnconfirmedIds;
  private readonly bounds: ProcessBounds;
  private local: LocalIds | undefined;
  private sharing: SharedIds | undefined;

  constructor(o: WebhookPortsOptions) {
    this.o = o;
    this.identities = new UnconfirmedIds(o.duplicatesWindowMs ?? 120_000);
    this.bounds = processBounds(o.limits);
  }

  /** Adds `route` on the server of `port` (created now on first use; it listens from `start`). */
  addRoute(port: string, route: WebhookRoute): void {
    let server = this.servers.get(port);
    if (!server) {
      server = this.newServer(port);
      this.servers.set(port, server);
      if (this.servers.size === 1) webhookMetrics(this.o.registry, this.bounds);
    }
    server.addRoute(route);
  }

  /**
   * Loads the unconfirmed ids kept by the previous process and by the other replicas, then listens
   * on every port that has a route, in order. Resolves with the port each configured port listens
   * on (they differ where "0" was configured); rejects when a port cannot be bound.
   */
  async start(): Promise<Map<string, number>> {
    const ports = new Map<string, number>();
    if (this.servers.size === 0) return ports;
    const o = this.o;
    const file = join(o.stateDir ?? tmpdir(), `sluice-webhook-ids-${o.namespace}-${o.name}.json`);
    this.local = keepLocally(this.identities, file, o.log);
    this.sharing = await shareUnconfirmed(
      {
        nc: o.nc,
        bus: o.bus,
        namespace: o.namespace,
        name: o.name,
        log: o.log,
        ...(o.duplicatesWindowMs ? { windowMs: o.duplicatesWindowMs } : {}),
      },
      this.identities,
    );
    for (const [port, server] of this.servers) {
      await server.start();
      ports.set(port, server.port);
      o.log.info({ port: server.port }, 'webhook server listening');
    }
    return ports;
  }

  /**
   * Stops every server within its grace period (server.ts), then writes the ids of requests
   * answered without a confirmed store to the shared memory (at most 500 ms) and the local file.
   */
  async stop(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => s.stop()));
    // What was answered without a confirmed store must outlive this process (see shared-ids.ts;
    // the servers flushed already before their last 503s, this is what came after).
    await this.sharing?.flush(500);
    this.sharing?.stop();
    this.local?.stop();
  }

  private newServer(port: string): WebhookServer {
    const { o, identities } = this;
    const labels = { namespace: o.namespace, eventsource_name: o.name };
    return new WebhookServer({
      port: Number(port),
      ...(o.host ? { host: o.host } : {}),
      limits: o.limits,
      bounds: this.bounds,
      hiddenHeaders: o.hiddenHeaders,
      idHeaders: o.idHeaders,
      identities,
      unhealthy: () => o.publisher.wedged(),
      busSlow: () => o.publisher.stalledMs() > BUS_SLOW_MS || o.publisher.queued > 0,
      beforeCut: async () => {
        this.local?.save();
        await this.sharing?.flush(1_000);
      },
      log: o.log.child({ port }),
      onResult: (event, status) => {
        if (status >= 400 && status !== 503) {
          o.processingFailed.inc({ ...labels, event_name: event ?? '', status: String(status) });
        }
      },
    });
  }
}
