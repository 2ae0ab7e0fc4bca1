// Shared pieces of the Sensor runtime tests: a bus with streams on the shared nats-server, event
// publishing, an HTTP sink that records every request and can be told to fail, and a runtime
// starter with the real parameter and matching code.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { SensorSpec } from '../../../src/api/sensor.ts';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, dlqStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { deploymentFor } from '../../../src/controller/resources/workload.ts';
import { encodeEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { RUNNERS } from '../../../src/sensors/runners.ts';
import { type RunningSensor, type SensorRuntimeOptions, startSensor } from '../../../src/sensors/runtime.ts';
import { sensorDependencyMatcher, sensorParameters } from '../../../src/sensors/wiring.ts';
import { uniqueName } from '../../harness/shared.ts';

export const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

export interface SinkRequest {
  path: string;
  key: string;
  body: unknown;
  at: number;
  /** The status the sink answered. */
  status?: number;
}

/** An HTTP sink: `answer` decides the status per request (default 200). */
export async function startSink(
  answer: (r: SinkRequest, n: number) => number | [number, Record<string, string>] = () => 200,
) {
  const requests: SinkRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep text
      }
      const r: SinkRequest = {
        path: req.url ?? '/',
        key: String(req.headers['idempotency-key'] ?? ''),
        body,
        at: Date.now(),
      };
      requests.push(r);
      const a = answer(r, requests.length);
      const [status, headers] = Array.isArray(a) ? a : [a, {}];
      r.status = status;
      res.writeHead(status, headers);
      res.end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    /** Requests to `path` (all when omitted). */
    on: (path?: string) => requests.filter((r) => path === undefined || r.path === path),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export async function newBus(url: string) {
  const conn = await BusConnection.open({ url });
  const bus: BusRef = { namespace: uniqueName('sn'), busName: 'default' };
  const cfg = parseStreamConfig('');
  if (!cfg.ok) throw new Error(cfg.errors.join());
  const jsm: JetStreamManager = await jetstreamManager(conn.nc);
  await ensureStreams(jsm, bus, cfg.settings, 1);
  const publisher = new Publisher(conn.nc);
  let n = 0;
  return {
    conn,
    bus,
    jsm,
    /** Publishes an event from EventSource `es`, event `event`. */
    async emit(
      es: string,
      event: string,
      data: unknown,
      id = `ev-${++n}-${Math.random().toString(36).slice(2, 8)}`,
    ) {
      const ev = envelope({ id, source: es, type: 'webhook', subject: event, data });
      await publisher.publish(eventSubject(bus, es, event), encodeEvent(ev), {
        msgId: `${es}/${event}/${id}`,
      });
      return ev;
    },
    /** Dead-letter records in the bus's DLQ stream. */
    async deadLetters(): Promise<Array<Record<string, unknown>>> {
      const info = await jsm.streams.info(dlqStreamName(bus));
      const out: Array<Record<string, unknown>> = [];
      for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(dlqStreamName(bus), { seq }).catch(() => null);
        if (m) out.push(m.json());
      }
      return out;
    },
  };
}

export type TestBus = Awaited<ReturnType<typeof newBus>>;

export async function runSensor(
  b: TestBus,
  name: string,
  spec: unknown,
  extra: Partial<SensorRuntimeOptions> = {},
): Promise<RunningSensor & { registry: ReturnType<typeof newRegistry> }> {
  const registry = newRegistry();
  const running = await startSensor({
    name,
    namespace: b.bus.namespace,
    spec: SensorSpec.parse(spec),
    bus: b.bus,
    nc: b.conn.nc,
    registry,
    log,
    runners: RUNNERS,
    compileDependency: sensorDependencyMatcher,
    params: sensorParameters,
    resolveSecret: async () => {
      throw new Error('no secrets in this test');
    },
    resolveConfigMap: async () => {
      throw new Error('no ConfigMaps in this test');
    },
    ackWaitMs: 5000,
    ...extra,
  });
  return { ...running, registry };
}

export async function until<T>(what: string, f: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function metric(
  registry: ReturnType<typeof newRegistry>,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  return data.values
    .filter((v) => !String((v as { metricName?: string }).metricName ?? '').endsWith('_bucket'))
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((a, v) => a + v.value, 0);
}

/**
 * How the controller would run Sensor `obj` as `sluice sensor` (its container's args and plain
 * env), with the metrics port on 0, a pod name, and a 2 s ack wait so kills are redelivered soon.
 */
export function sensorProcess(
  obj: { metadata: { name: string; namespace: string; uid: string }; spec: unknown } & Record<
    string,
    unknown
  >,
  url: string,
): { args: string[]; env: Record<string, string> } {
  const d = deploymentFor({ ...obj, ...obj.metadata, kind: 'Sensor' } as never, obj as never, {
    image: 'sluice:test',
    bus: { busName: 'default', namespace: obj.metadata.namespace, url },
  });
  const ctr = d.spec!.template.spec!.containers[0]!;
  const env = Object.fromEntries(
    ctr.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
  return {
    args: ctr.args!.map((a) => (a === '7777' ? '0' : a)),
    env: {
      ...env,
      POD_NAME: `${obj.metadata.name}-0`,
      POD_NAMESPACE: obj.metadata.namespace,
      SLUICE_ACK_WAIT_MS: '2000',
    },
  };
}
