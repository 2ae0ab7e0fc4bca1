// `nats` and `resource` EventSources against real servers: a second nats-server as the outside
// NATS, the harness kube-apiserver for Kubernetes objects. Events reach the bus with the right
// envelope, subject and id; a resend / relist is stored once; filters and namespace scoping hold;
// with replicas: 2 only the Lease holder watches, and the other takes over when it stops.
import { CoreV1Api } from '@kubernetes/client-node';
import { connect, headers } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import type { BusRef } from '../../../src/bus/subjects.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { type NatsServer, startNats } from '../../harness/nats.ts';
import { waitFor } from '../../harness/proc.ts';
import { kubeConfig, kubeMissing, natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { busWithStreams, storedTexts } from './fixtures.ts';

const log = createLogger({ level: 'silent' });

describe.skipIf(natsMissing())(`nats EventSource${skipNote(natsMissing())}`, () => {
  let outside: NatsServer;
  let conn: BusConnection;
  beforeAll(async () => {
    outside = await startNats();
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
    await outside?.stop();
  });

  it('turns messages into events; Nats-Msg-Id makes a resend one event; requests get "ok" after storing', async () => {
    const { bus, stored, jsm } = await busWithStreams(conn, 'natsrc');
    const es = await startEventSource({
      name: 'ext',
      namespace: bus.namespace,
      spec: EventSourceSpec.parse({
        nats: {
          orders: { url: outside.url, subject: 'orders.>', jsonBody: true, metadata: { from: 'ext' } },
        },
      }),
      bus,
      publisher: new Publisher(conn.nc),
      nc: conn.nc,
      registry: newRegistry(),
      log,
      resolveSecret: async () => '',
    });
    const nc = await connect({ servers: outside.url });
    try {
      const h = headers();
      h.set('Nats-Msg-Id', 'order-7');
      nc.publish('orders.eu', JSON.stringify({ n: 7 }), { headers: h });
      nc.publish('orders.eu', JSON.stringify({ n: 7 }), { headers: h });
      const reply = await nc.request('orders.us', JSON.stringify({ n: 8 }), { timeout: 5000 });
      expect(reply.string()).toBe('ok');
      nc.publish('other', 'ignored');
      await waitFor('two events', async () => (await stored()).length === 2);
      const evs = await stored();
      expect(evs[0]).toMatchObject({ id: 'order-7', type: 'nats', source: 'ext', subject: 'orders' });
      expect(evs[0]!.data).toMatchObject({ subject: 'orders.eu', data: { n: 7 }, metadata: { from: 'ext' } });
      expect((evs[1]!.data as { data: unknown }).data).toEqual({ n: 8 });
      // JSON nested past the bound is a poison message: dropped (and answered), never stored.
      const deep = await nc.request('orders.us', `{"n":${'['.repeat(5000)}${']'.repeat(5000)}}`, {
        timeout: 5000,
      });
      expect(deep.string()).toBe('error: body is not JSON');
      await new Promise((r) => setTimeout(r, 200));
      expect(await stored()).toHaveLength(2);
      // The message's JSON is carried as sent; an id that cannot travel in a NATS header line
      // (here too long) becomes a digest of itself, so a resend is still one event.
      const long = headers();
      long.set('Nats-Msg-Id', `order-${'x'.repeat(300)}`);
      for (let i = 0; i < 2; i++)
        nc.publish('orders.eu', '{"n":1234567890123456789, "n2":1.0}', { headers: long });
      await waitFor('three events', async () => (await stored()).length === 3);
      await new Promise((r) => setTimeout(r, 200));
      const last = (await stored())[2]!;
      expect(last.id).toMatch(/^sha256-[\w-]{43}$/);
      expect((await storedTexts(jsm, bus)).pop()).toContain('"data":{"n":1234567890123456789, "n2":1.0}');
      expect(await stored()).toHaveLength(3);
    } finally {
      await nc.close();
      await es.stop();
    }
  });
});

const kubeSkip = kubeMissing() ?? natsMissing();
describe.skipIf(kubeSkip)(`resource EventSource${skipNote(kubeSkip)}`, () => {
  let conn: BusConnection;
  let ns: string;
  let other: string;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
    ns = uniqueName('res');
    other = uniqueName('res-other');
    for (const n of [ns, other]) await core().createNamespace({ body: { metadata: { name: n } } });
  });
  afterAll(async () => {
    await conn?.close();
  });

  const start = (bus: BusRef, spec: Record<string, unknown>, identity?: string, registry = newRegistry()) =>
    startEventSource({
      name: 'watcher',
      namespace: bus.namespace,
      spec: EventSourceSpec.parse(spec),
      bus,
      publisher: new Publisher(conn.nc),
      nc: conn.nc,
      registry,
      log,
      resolveSecret: async () => '',
      kubeConfig: () => kubeConfig(),
      ...(identity
        ? { identity, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, leaseNamespace: ns }
        : {}),
    });

  it('ADD / UPDATE / DELETE of ConfigMaps, label and field filters, namespace scoping', async () => {
    const { bus, stored } = await busWithStreams(conn, 'resbus');
    const es = await start(bus, {
      resource: {
        cms: {
          namespace: ns,
          version: 'v1',
          resource: 'configmaps',
          eventTypes: ['ADD', 'UPDATE', 'DELETE'],
          filter: {
            labels: [{ key: 'app', value: 'shop' }],
            fields: [{ key: 'metadata.name', operation: '!=', value: 'skip-me' }],
          },
        },
      },
    });
    try {
      const cm = (name: string, labels: Record<string, string>, namespace = ns) =>
        core().createNamespacedConfigMap({
          namespace,
          body: { metadata: { name, labels }, data: { v: '1' } },
        });
      await cm('orders', { app: 'shop' });
      await cm('skip-me', { app: 'shop' });
      await cm('unlabelled', { app: 'other' });
      await cm('orders', { app: 'shop' }, other);
      const current = await core().readNamespacedConfigMap({ name: 'orders', namespace: ns });
      await core().replaceNamespacedConfigMap({
        name: 'orders',
        namespace: ns,
        body: { ...current, data: { v: '2' } },
      });
      await core().deleteNamespacedConfigMap({ name: 'orders', namespace: ns });
      await waitFor('three changes', async () => (await stored()).length >= 3, { timeoutMs: 15_000 });
      await new Promise((r) => setTimeout(r, 300));
      const evs = await stored();
      expect(evs.map((e) => (e.data as { type: string }).type)).toEqual(['ADD', 'UPDATE', 'DELETE']);
      for (const e of evs) {
        const d = e.data as {
          body: { metadata: { name: string; namespace: string; uid: string; resourceVersion: string } };
          type: string;
          version: string;
          resource: string;
        };
        expect(d.body.metadata).toMatchObject({ name: 'orders', namespace: ns });
        expect(d).toMatchObject({ version: 'v1', resource: 'configmaps' });
        expect(e.id).toBe(`${d.body.metadata.uid}:${d.body.metadata.resourceVersion}:${d.type}`);
        expect(e).toMatchObject({ type: 'resource', subject: 'cms', source: 'watcher' });
      }
      expect((evs[1]!.data as { body: { data: { v: string } } }).body.data.v).toBe('2');
    } finally {
      await es.stop();
    }
  });

  it('replicas: 2 — only the Lease holder emits; the other takes over when it stops, nothing twice', async () => {
    const { bus, stored } = await busWithStreams(conn, 'resha');
    const spec = {
      replicas: 2,
      resource: {
        sec: {
          namespace: ns,
          version: 'v1',
          resource: 'secrets',
          eventTypes: ['ADD'],
          filter: { afterStart: true },
        },
      },
    };
    const ra = newRegistry();
    const rb = newRegistry();
    const sent = async (r: ReturnType<typeof newRegistry>) =>
      (await r.getSingleMetric('argo_events_events_sent_total')?.get())?.values.reduce(
        (x, v) => x + v.value,
        0,
      ) ?? 0;
    const a = await start(bus, spec, 'a', ra);
    const b = await start(bus, spec, 'b', rb);
    try {
      const secret = (name: string) =>
        core().createNamespacedSecret({
          namespace: ns,
          body: { metadata: { name }, stringData: { k: 'v' } },
        });
      await new Promise((r) => setTimeout(r, 1500));
      await secret('first');
      await waitFor('first seen', async () => (await stored()).length === 1, { timeoutMs: 15_000 });
      await new Promise((r) => setTimeout(r, 500));
      expect(await stored()).toHaveLength(1);
      // Exactly one replica watched and published.
      expect([await sent(ra), await sent(rb)].sort()).toEqual([0, 1]);
      await a.stop();
      // The new leader lists again: 'first' comes out as an ADD with the same id and is dropped
      // by the bus (duplicates window), so it is still stored once.
      await new Promise((r) => setTimeout(r, 1500));
      await secret('second');
      await waitFor('second seen by the other replica', async () => (await stored()).length === 2, {
        timeoutMs: 20_000,
      });
      const names = (await stored()).map(
        (e) => (e.data as { body: { metadata: { name: string } } }).body.metadata.name,
      );
      expect(names).toEqual(['first', 'second']);
    } finally {
      await b.stop();
      await a.stop();
    }
  }, 60_000);
});
