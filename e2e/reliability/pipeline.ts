// A whole sluice pipeline for the reliability scenarios, built from real processes: a private
// nats-server (killable), `sluice eventsource` and `sluice sensor` run from the container specs
// the controller generates (killable and restartable), and an idempotent HTTP sink that records
// every request. Senders count what was accepted (2xx); the sink and the DLQ stream count what
// came out; `verdict()` checks accepted = delivered once + dead-lettered, with no duplicate effect.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { SensorSpec } from '../../src/api/sensor.ts';
import { duplicatesWindowMs, parseStreamConfig } from '../../src/api/stream-config.ts';
import { sensorMaxDeliver } from '../../src/bus/consumer.ts';
import { provisionSensorState } from '../../src/bus/sensor-state.ts';
import { eventSourceBucketSpecs, provisionBuckets } from '../../src/bus/source-state.ts';
import { ensureStreams } from '../../src/bus/streams.ts';
import { type BusRef, dlqStreamName } from '../../src/bus/subjects.ts';
import { deploymentFor, type RuntimeBus } from '../../src/controller/resources/workload.ts';
import { type NatsServer, startNats } from '../../test/harness/nats.ts';
import { freePort } from '../../test/harness/ports.ts';
import { waitFor } from '../../test/harness/proc.ts';
import { uniqueName } from '../../test/harness/shared.ts';
import { type SluiceProcess, startSluice } from '../../test/harness/sluice-process.ts';

export interface SinkRecord {
  id: string;
  key: string;
  status: number;
  at: number;
}

/** Decides the sink's answer per request: a status code (default 200). */
export type SinkPolicy = (id: string, attempt: number) => number;

export async function startIdempotentSink(policy: SinkPolicy = () => 200) {
  const records: SinkRecord[] = [];
  const attempts = new Map<string, number>();
  /** key → id, for requests answered 2xx: the effects. */
  const effects = new Map<string, string>();
  let down = false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let id = '';
      try {
        id = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id ?? '');
      } catch {
        // leave empty
      }
      const key = String(req.headers['idempotency-key'] ?? '');
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      const status = down ? 503 : policy(id, n);
      records.push({ id, key, status, at: Date.now() });
      if (status < 300 && !effects.has(key)) effects.set(key, id);
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    records,
    effects,
    setDown(v: boolean) {
      down = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export type IdempotentSink = Awaited<ReturnType<typeof startIdempotentSink>>;

export interface PipelineOptions {
  sink: IdempotentSink;
  /** Extra fields on the Sensor's trigger (retryStrategy, circuitBreaker, rateLimit...). */
  trigger?: Record<string, unknown>;
  /** streamConfig YAML of the bus. */
  streamConfig?: string;
  /** Extra env for the sensor process (e.g. SLUICE_ACK_WAIT_MS). */
  sensorEnv?: Record<string, string>;
  /** Extra fields of the webhook entry (e.g. maxPayloadSize). */
  eventSourceSpec?: Record<string, unknown>;
  /** Extra env for the eventsource process (e.g. SLUICE_WEBHOOK_MAX_IN_FLIGHT). */
  eventSourceEnv?: Record<string, string>;
  /**
   * A whole Sensor spec instead of the default one (dependency "order" on hooks/orders, trigger
   * "deliver" to the sink with `id` from body.id).
   */
  sensorSpec?: (sinkUrl: string) => Record<string, unknown>;
  /** Run on this bus (e.g. a secured 3-server cluster) instead of a private nats-server. */
  bus?: ExternalBus;
  /** Namespace of the objects (default: a fresh one), e.g. to give credentials permissions first. */
  namespace?: string;
}

/** A bus the pipeline does not start: the test owns its servers (`nats` is then undefined). */
export interface ExternalBus {
  /** Client URL(s), comma-separated. */
  url: string;
  /** An admin connection for the test's own bookkeeping (streams, consumers, DLQ counts). */
  connect(): Promise<NatsConnection>;
  /** Copies of streams and KV buckets. */
  replicas: number;
  /** Per role: extra env (its credential) and RuntimeBus fields (TLS CA, inbox prefix). */
  roles: Record<'EventSource' | 'Sensor', { env: Record<string, string>; bus: Partial<RuntimeBus> }>;
}

export async function startPipeline(o: PipelineOptions) {
  const nats = (o.bus ? undefined : await startNats()) as NatsServer;
  const busUrl = o.bus?.url ?? nats.url;
  const replicas = o.bus?.replicas ?? 1;
  const bus: BusRef = { namespace: o.namespace ?? uniqueName('rel'), busName: 'default' };
  const nc: NatsConnection = o.bus
    ? await o.bus.connect()
    : await connect({
        servers: nats.url,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 200,
      });
  const cfg = parseStreamConfig(o.streamConfig ?? '');
  if (!cfg.ok) throw new Error(cfg.errors.join());
  await ensureStreams(await jetstreamManager(nc), bus, cfg.settings, replicas);
  const defaultSensorSpec = {
    dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }],
    triggers: [
      {
        template: {
          name: 'deliver',
          http: {
            url: `${o.sink.url}/orders`,
            payload: [{ src: { dependencyName: 'order', dataKey: 'body.id' }, dest: 'id' }],
          },
        },
        ...(o.trigger ?? {}),
      },
    ],
  };
  const sensorSpec = o.sensorSpec?.(o.sink.url) ?? defaultSensorSpec;
  // As the controller does: the Sensor's consumers exist before any event is published (under
  // interest retention an event nobody consumes yet is not kept).
  await provisionSensorState(await jetstreamManager(nc), nc, {
    bus,
    sensor: 'orders',
    dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'orders' }],
    tuning: {
      ackWaitMs: Number(o.sensorEnv?.SLUICE_ACK_WAIT_MS ?? 3000),
      maxDeliver: sensorMaxDeliver(SensorSpec.parse(sensorSpec)),
    },
    replicas,
  });
  const hookPort = await freePort();
  const esSpec = {
    webhook: {
      orders: { port: String(hookPort), endpoint: '/orders', method: 'POST', ...(o.eventSourceSpec ?? {}) },
    },
  };
  // Likewise the EventSource's bucket (the webhook's shared request ids).
  await provisionBuckets(
    await jetstreamManager(nc),
    eventSourceBucketSpecs(bus.namespace, 'hooks', esSpec, duplicatesWindowMs(cfg.settings)),
    replicas,
  );

  const procSpec = (kind: 'EventSource' | 'Sensor', name: string, spec: Record<string, unknown>) => {
    const obj = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind,
      metadata: { name, namespace: bus.namespace, uid: `${name}-uid` },
      spec,
    };
    const d = deploymentFor({ ...obj, ...obj.metadata, kind }, obj as never, {
      image: 'sluice:test',
      bus: { busName: bus.busName, namespace: bus.namespace, url: busUrl, ...o.bus?.roles[kind].bus },
    });
    const ctr = d.spec!.template.spec!.containers[0]!;
    const env = Object.fromEntries(
      ctr.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    return {
      args: ctr.args!.map((a) => (a === '7777' ? '0' : a)),
      env: { ...env, POD_NAME: `${name}-0`, POD_NAMESPACE: bus.namespace, ...o.bus?.roles[kind].env },
    };
  };

  const es = procSpec('EventSource', 'hooks', esSpec);
  const sn = procSpec('Sensor', 'orders', sensorSpec);

  const esEnv = { ...es.env, ...(o.eventSourceEnv ?? {}) };
  let esProc: SluiceProcess = await startSluice(es.args, esEnv);
  let snProc: SluiceProcess = await startSluice(sn.args, {
    ...sn.env,
    SLUICE_ACK_WAIT_MS: '3000',
    ...(o.sensorEnv ?? {}),
  });
  const base = `http://127.0.0.1:${hookPort}/orders`;
  await waitFor(
    'webhook up',
    async () => (await fetch(base, { method: 'GET' }).catch(() => undefined))?.status === 405,
  );

  const accepted = new Set<string>();
  const answers = new Map<number, number>();
  let sendAttempts = 0;

  /** One delivery attempt of event `id`; resolves with the status (0 = connection failed). */
  const post = async (
    id: string,
    body: string = JSON.stringify({ id }),
    headers: Record<string, string> = {},
  ) => {
    sendAttempts++;
    try {
      const r = await fetch(base, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': id, ...headers },
        body,
        // Longer than the webhook's publish deadline (10 s), after which it answers 503.
        signal: AbortSignal.timeout(15_000),
      });
      await r.arrayBuffer();
      answers.set(r.status, (answers.get(r.status) ?? 0) + 1);
      return { status: r.status, retryAfter: r.headers.get('retry-after') };
    } catch {
      answers.set(0, (answers.get(0) ?? 0) + 1);
      return { status: 0, retryAfter: null };
    }
  };

  /**
   * Sends `ids` with `concurrency` senders; each id is retried on non-2xx (honouring Retry-After,
   * capped) until accepted or `deadlineMs` passes.
   */
  const send = async (ids: string[], concurrency = 16, deadlineMs = 60_000) => {
    const queue = [...ids];
    const end = Date.now() + deadlineMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          for (;;) {
            const r = await post(id);
            if (r.status >= 200 && r.status < 300) {
              accepted.add(id);
              break;
            }
            if (Date.now() > end) break;
            const wait = Math.min(2000, (Number(r.retryAfter) || 0.2) * 1000);
            await new Promise((res) => setTimeout(res, wait));
          }
        }
      }),
    );
  };

  const deadLetteredIds = async (): Promise<string[]> => {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(dlqStreamName(bus));
    const ids: string[] = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(dlqStreamName(bus), { seq }).catch(() => null);
      if (!m) continue;
      const rec = m.json<{ events: Record<string, { data: { body: { id: string } } }> }>();
      ids.push(rec.events.order!.data.body.id);
    }
    return ids;
  };

  return {
    nats,
    bus,
    nc,
    base,
    accepted,
    answers,
    post,
    send,
    deadLetteredIds,
    get sendAttempts() {
      return sendAttempts;
    },
    get eventSource() {
      return esProc;
    },
    get sensor() {
      return snProc;
    },
    async restartEventSource(kill = true) {
      if (kill) await esProc.proc.kill();
      else await esProc.proc.stop();
      esProc = await startSluice(es.args, esEnv);
      await waitFor(
        'webhook up',
        async () => (await fetch(base, { method: 'GET' }).catch(() => undefined))?.status === 405,
      );
    },
    async restartSensor(kill = true) {
      if (kill) await snProc.proc.kill();
      else await snProc.proc.stop();
      snProc = await startSluice(sn.args, { ...sn.env, SLUICE_ACK_WAIT_MS: '3000', ...(o.sensorEnv ?? {}) });
    },
    /**
     * Waits until every accepted event is delivered or dead-lettered, then checks the invariant.
     * Returns the counts for the report.
     */
    async verdict(timeoutMs = 60_000) {
      const sink = o.sink;
      const outcome = async () => {
        const delivered = new Set(sink.effects.values());
        const dead = new Set(await deadLetteredIds());
        return { delivered, dead };
      };
      await waitFor(
        'every accepted event delivered or dead-lettered',
        async () => {
          const { delivered, dead } = await outcome();
          return [...this.accepted].every((id) => delivered.has(id) || dead.has(id));
        },
        { timeoutMs, intervalMs: 250 },
      );
      // Let stragglers (redeliveries) arrive before counting duplicates.
      await new Promise((r) => setTimeout(r, 1500));
      const { delivered, dead } = await outcome();
      const keysPerId = new Map<string, Set<string>>();
      for (const [key, id] of sink.effects) keysPerId.set(id, (keysPerId.get(id) ?? new Set()).add(key));
      const duplicateEffects = [...keysPerId.values()].filter((k) => k.size > 1).length;
      const deadCounts = new Map<string, number>();
      for (const id of await deadLetteredIds()) deadCounts.set(id, (deadCounts.get(id) ?? 0) + 1);
      return {
        accepted: this.accepted.size,
        deliveredOnce: [...this.accepted].filter((id) => delivered.has(id) && !dead.has(id)).length,
        deadLettered: [...this.accepted].filter((id) => dead.has(id)).length,
        deliveredAndDead: [...this.accepted].filter((id) => delivered.has(id) && dead.has(id)).length,
        duplicateEffects,
        duplicateDeadLetters: [...deadCounts.values()].filter((n) => n > 1).length,
        unaccountedOutputs: [...delivered, ...dead].filter((id) => !this.accepted.has(id) && id !== '')
          .length,
        sinkRequests: sink.records.length,
        sendAttempts,
        answers: Object.fromEntries(answers),
      };
    },
    async stop() {
      await Promise.allSettled([esProc.proc.stop(), snProc.proc.stop()]);
      await nc.close().catch(() => {});
      await nats?.stop();
    },
  };
}

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;

/** Prints a scenario's counts in one line, for the test log and the README. */
export function report(name: string, counts: Record<string, unknown>): void {
  process.stdout.write(`reliability ${name}: ${JSON.stringify(counts)}\n`);
}
