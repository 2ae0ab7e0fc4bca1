// Webhook EventSource against a real nats-server: 200 means the event is in the stream; a full
// stream or a dead server gets 503 + Retry-After and nothing half-stored; retries after a restart
// succeed; oversize, bad JSON and bad tokens get 413/400/401; a repeated delivery is one event.
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { type CloudEvent, decodeEvent } from '../../../src/eventsources/envelope.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { startNats } from '../../harness/nats.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

const log = createLogger({ level: 'error' });
const spec = EventSourceSpec.parse({
  webhook: {
    plain: { port: '0', endpoint: '/plain', method: 'POST' },
    secure: { port: '0', endpoint: '/secure', method: 'POST', authSecret: { name: 's', key: 'token' } },
    small: { port: '0', endpoint: '/small', method: 'POST', maxPayloadSize: 100 },
  },
});

async function setup(url: string, streamConfig: string, publisherTimeoutMs = 5000) {
  const conn = await BusConnection.open({ url });
  const bus: BusRef = { namespace: uniqueName('wh'), busName: 'default' };
  // No Sensor here: keep what is published as history (interest retention, the default, keeps
  // only what a consumer still needs).
  const cfg = parseStreamConfig(`retention: limits\n${streamConfig}`);
  if (!cfg.ok) throw new Error(cfg.errors.join());
  await ensureStreams(await jetstreamManager(conn.nc), bus, cfg.settings, 1);
  const registry = newRegistry();
  const es = await startEventSource({
    name: 'hooks',
    namespace: bus.namespace,
    spec,
    bus,
    publisher: new Publisher(conn.nc, { timeoutMs: publisherTimeoutMs }),
    nc: conn.nc,
    registry,
    log,
    resolveSecret: async () => 'sekret\n',
    host: '127.0.0.1',
  });
  const base = `http://127.0.0.1:${es.ports.get('0')}`;
  const stored = async (): Promise<CloudEvent[]> => {
    const jsm = await jetstreamManager(conn.nc);
    const info = await jsm.streams.info(eventStreamName(bus));
    const out: CloudEvent[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(eventStreamName(bus), { seq });
      if (m) out.push(decodeEvent(m.data));
    }
    return out;
  };
  return { conn, bus, es, base, stored, registry };
}

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

describe.skipIf(natsMissing())(`webhook EventSource${skipNote(natsMissing())}`, () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    s = await setup(natsUrl(), '');
  });
  afterAll(async () => {
    await s?.es.stop();
    await s?.conn.close();
  });

  it('answers 200 only with the event stored, in a CloudEvents envelope on the right subject', async () => {
    const res = await post(`${s.base}/plain`, JSON.stringify({ order: 42 }), {
      'idempotency-key': 'delivery-1',
    });
    expect(res.status).toBe(200);
    const events = await s.stored();
    expect(events).toHaveLength(1);
    const ev = events[0]!;
    expect(ev).toMatchObject({
      specversion: '1.0',
      id: 'delivery-1',
      source: 'hooks',
      type: 'webhook',
      subject: 'plain',
    });
    expect((ev.data as { body: unknown }).body).toEqual({ order: 42 });
    expect(ev.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const jsm = await jetstreamManager(s.conn.nc);
    const m = await jsm.streams.getMessage(eventStreamName(s.bus), {
      last_by_subj: eventSubject(s.bus, 'hooks', 'plain'),
    });
    expect(m?.seq).toBe(1);
  });

  it('stores one event for the same delivery sent three times', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await post(`${s.base}/plain`, '{"n":1}', { 'idempotency-key': 'delivery-2' })).status).toBe(
        200,
      );
    }
    expect((await s.stored()).filter((e) => e.id === 'delivery-2')).toHaveLength(1);
  });

  it('rejects bad input before publishing: 413, 400, 401, 404, 405', async () => {
    const before = (await s.stored()).length;
    expect((await post(`${s.base}/small`, JSON.stringify({ x: 'y'.repeat(200) }))).status).toBe(413);
    expect((await post(`${s.base}/plain`, '{"broken":')).status).toBe(400);
    expect((await post(`${s.base}/secure`, '{}')).status).toBe(401);
    expect((await post(`${s.base}/secure`, '{}', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post(`${s.base}/nowhere`, '{}')).status).toBe(404);
    expect((await fetch(`${s.base}/plain`)).status).toBe(405);
    expect((await s.stored()).length).toBe(before);
    expect((await post(`${s.base}/secure`, '{}', { authorization: 'Bearer sekret' })).status).toBe(200);
    const metrics = await s.registry.metrics();
    expect(metrics).toMatch(/argo_events_events_processing_failed_total\{[^}]*status="401"[^}]*\} 2/);
  });
});

describe.skipIf(natsMissing())(
  `webhook EventSource when the bus cannot take events${skipNote(natsMissing())}`,
  () => {
    it('answers 503 + Retry-After when the stream is full, storing nothing extra', async () => {
      const s = await setup(natsUrl(), 'maxMsgs: 3');
      try {
        for (let i = 0; i < 3; i++) expect((await post(`${s.base}/plain`, `{"i":${i}}`)).status).toBe(200);
        const full = await post(`${s.base}/plain`, '{"i":3}');
        expect(full.status).toBe(503);
        expect(full.headers.get('retry-after')).toBeTruthy();
        expect((await s.stored()).map((e) => (e.data as { body: { i: number } }).body.i)).toEqual([0, 1, 2]);
      } finally {
        await s.es.stop();
        await s.conn.close();
      }
    });

    it('answers 503 while nats-server is down, and the retried delivery succeeds after it restarts', async () => {
      const server = await startNats();
      const s = await setup(server.url, '', 1500);
      try {
        expect((await post(`${s.base}/plain`, '{"before":1}', { 'idempotency-key': 'd-0' })).status).toBe(
          200,
        );
        await server.kill();
        const down = await post(`${s.base}/plain`, '{"during":1}', { 'idempotency-key': 'd-1' });
        expect(down.status).toBe(503);
        expect(down.headers.get('retry-after')).toBeTruthy();
        await server.start();
        let status = 0;
        for (let i = 0; i < 40 && status !== 200; i++) {
          status = (await post(`${s.base}/plain`, '{"during":1}', { 'idempotency-key': 'd-1' })).status;
          if (status !== 200) await new Promise((r) => setTimeout(r, 250));
        }
        expect(status).toBe(200);
        const ids = (await s.stored()).map((e) => e.id);
        expect(ids).toEqual(['d-0', 'd-1']);
      } finally {
        await s.es.stop();
        await s.conn.close();
        await server.stop();
      }
    });
  },
);

describe.skipIf(natsMissing())(`webhook EventSource over TLS${skipNote(natsMissing())}`, () => {
  it('serves HTTPS with the certificate and key from its Secrets', async () => {
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { request } = await import('node:https');
    const { ensurePki } = await import('../../harness/certs.ts');
    const pki = ensurePki(mkdtempSync(join(tmpdir(), 'hook-tls-')));
    const files: Record<string, string> = { cert: pki.servingCert, key: pki.servingKey };
    const conn = await BusConnection.open({ url: natsUrl() });
    const bus: BusRef = { namespace: uniqueName('tls'), busName: 'default' };
    const cfg = parseStreamConfig('retention: limits'); // no Sensor: keep what is published to read it back
    if (!cfg.ok) throw new Error(cfg.errors.join());
    await ensureStreams(await jetstreamManager(conn.nc), bus, cfg.settings, 1);
    const es = await startEventSource({
      name: 'secure',
      namespace: bus.namespace,
      spec: EventSourceSpec.parse({
        webhook: {
          push: {
            port: '0',
            endpoint: '/push',
            method: 'POST',
            serverCertSecret: { name: 'tls', key: 'cert' },
            serverKeySecret: { name: 'tls', key: 'key' },
          },
        },
      }),
      bus,
      publisher: new Publisher(conn.nc),
      nc: conn.nc,
      registry: newRegistry(),
      log,
      resolveSecret: async (sel) => readFileSync(files[sel.key]!, 'utf8'),
      host: '127.0.0.1',
    });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: es.ports.get('0'),
            path: '/push',
            method: 'POST',
            ca: readFileSync(pki.caCert),
            servername: 'localhost',
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end('{"secure":true}');
      });
      expect(status).toBe(200);
      const plain = await fetch(`http://127.0.0.1:${es.ports.get('0')}/push`, {
        method: 'POST',
        body: '{}',
      }).catch(() => undefined);
      expect(plain?.status).not.toBe(200);
    } finally {
      await es.stop();
      await conn.close();
    }
  });
});
