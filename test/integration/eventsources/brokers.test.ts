// Broker EventSources against the real servers from Debian's packages (redis-server, mosquitto):
// messages become events on the bus with the right envelope; a Redis stream entry is acked only
// after the bus stored its event (with the stream full it stays pending and is published once
// room is made), and an entry read twice is stored once.
import { hostname } from 'node:os';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import mqttLib from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import {
  type Broker,
  brokerMissing,
  startMosquitto,
  startRabbitMQ,
  startRedis,
} from '../../harness/brokers.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { busWithStreams } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

async function setup(conn: BusConnection, streamConfig = '') {
  const { bus, jsm, stored } = await busWithStreams(conn, 'brk', streamConfig);
  const start = (spec: Record<string, unknown>) =>
    startEventSource({
      name: 'brokers',
      namespace: bus.namespace,
      spec: EventSourceSpec.parse(spec),
      bus,
      publisher: new Publisher(conn.nc, { timeoutMs: 2000 }),
      nc: conn.nc,
      registry: newRegistry(),
      log,
      resolveSecret: async () => '',
    });
  return { bus, jsm, stored, start };
}

const redisSkip = natsMissing() ?? brokerMissing('redis-server');
describe.skipIf(redisSkip)(`redis EventSources${skipNote(redisSkip)}`, () => {
  let redis: Broker;
  let conn: BusConnection;
  let client: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    conn = await BusConnection.open({ url: natsUrl() });
    client = new Redis({ host: redis.host, port: redis.port });
  });
  afterAll(async () => {
    client?.disconnect();
    await conn?.close();
    await redis?.stop();
  });

  it('pub/sub: channel and glob pattern messages become events (JSON body)', async () => {
    const s = await setup(conn);
    const es = await s.start({
      redis: {
        news: { hostAddress: `${redis.host}:${redis.port}`, channels: ['alerts', 'news.*'], jsonBody: true },
      },
    });
    try {
      await client.publish('alerts', JSON.stringify({ level: 'high' }));
      await client.publish('news.sport', JSON.stringify({ score: 3 }));
      await client.publish('weather', '{}');
      await waitFor('two events', async () => (await s.stored()).length === 2);
      const evs = await s.stored();
      expect(evs.map((e) => e.data)).toEqual([
        { channel: 'alerts', body: { level: 'high' } },
        { channel: 'news.sport', pattern: 'news.*', body: { score: 3 } },
      ]);
      expect(evs[0]).toMatchObject({ type: 'redis', subject: 'news', source: 'brokers' });
    } finally {
      await es.stop();
    }
  });

  it('streams: consumer group, acked after storing, "<stream>:<id>" ids, held while the bus is full', async () => {
    const s = await setup(conn, 'maxMsgs: 3');
    const key = uniqueName('orders');
    const es = await s.start({
      redisStream: { orders: { hostAddress: `${redis.host}:${redis.port}`, streams: [key] } },
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await client.xadd(key, '*', 'n', String(i)))!);
      // The bus takes 3; the other two stay pending in the group, not acked.
      await waitFor('three stored', async () => (await s.stored()).length === 3);
      await new Promise((r) => setTimeout(r, 500));
      const pending = (await client.xpending(key, 'argo-events-cg')) as [number, ...unknown[]];
      expect(pending[0]).toBe(2);
      expect((await s.stored()).map((e) => e.id)).toEqual(ids.slice(0, 3).map((id) => `${key}:${id}`));
      // Make room: the pending entries are published, once each, and acked.
      await s.jsm.streams.purge(eventStreamName(s.bus));
      await waitFor('the rest stored', async () => (await s.stored()).length === 2, { timeoutMs: 15_000 });
      expect((await s.stored()).map((e) => (e.data as { values: { n: string } }).values.n)).toEqual([
        '3',
        '4',
      ]);
      await waitFor(
        'all acked',
        async () => ((await client.xpending(key, 'argo-events-cg')) as [number])[0] === 0,
      );
    } finally {
      await es.stop();
    }
  }, 30_000);

  it('streams: an entry too large for the bus is counted and acked past; the stream moves on', async () => {
    const s = await setup(conn, 'maxMsgSize: 4KB');
    const key = uniqueName('big');
    const es = await s.start({
      redisStream: { big: { hostAddress: `${redis.host}:${redis.port}`, streams: [key] } },
    });
    try {
      for (const v of ['small', 'x'.repeat(8_000), 'after']) await client.xadd(key, '*', 'v', v);
      await waitFor('small and after stored', async () => (await s.stored()).length === 2, {
        timeoutMs: 15_000,
      });
      expect((await s.stored()).map((e) => (e.data as { values: { v: string } }).values.v)).toEqual([
        'small',
        'after',
      ]);
      await waitFor(
        'all acked',
        async () => ((await client.xpending(key, 'argo-events-cg')) as [number])[0] === 0,
      );
    } finally {
      await es.stop();
    }
  }, 30_000);

  it('streams: an entry stored but not acked before a crash is read again and stored once', async () => {
    const s = await setup(conn);
    const key = uniqueName('replay');
    await client.xgroup('CREATE', key, 'argo-events-cg', '$', 'MKSTREAM');
    const id = (await client.xadd(key, '*', 'n', '1'))!;
    // The source's consumer read it and stored its event, then died before XACK.
    const consumer = `${process.env.POD_NAME ?? hostname()}-again`;
    await client.xreadgroup('GROUP', 'argo-events-cg', consumer, 'COUNT', 1, 'STREAMS', key, '>');
    const ev = envelope({
      id: `${key}:${id}`,
      source: 'brokers',
      type: 'redisStream',
      subject: 'again',
      data: {},
    });
    await new Publisher(conn.nc).publish(eventSubject(s.bus, 'brokers', 'again'), encodeEvent(ev), {
      msgId: `brokers/again/${ev.id}`,
    });
    const es = await s.start({
      redisStream: { again: { hostAddress: `${redis.host}:${redis.port}`, streams: [key] } },
    });
    try {
      await waitFor(
        'entry acked',
        async () => ((await client.xpending(key, 'argo-events-cg')) as [number])[0] === 0,
        {
          timeoutMs: 10_000,
        },
      );
      expect((await s.stored()).map((e) => e.id)).toEqual([`${key}:${id}`]);
    } finally {
      await es.stop();
    }
  }, 30_000);
});

const mqttSkip = natsMissing() ?? brokerMissing('mosquitto');
describe.skipIf(mqttSkip)(`mqtt EventSource${skipNote(mqttSkip)}`, () => {
  let broker: Broker;
  let conn: BusConnection;
  beforeAll(async () => {
    broker = await startMosquitto();
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
    await broker?.stop();
  });

  it('QoS 1 messages on a topic filter become events; messages sent while it was away arrive after it reconnects', async () => {
    const s = await setup(conn);
    const spec = {
      mqtt: {
        sensors: {
          url: `tcp://${broker.host}:${broker.port}`,
          topic: 'plant/+/temp',
          clientId: uniqueName('sluice'),
          jsonBody: true,
        },
      },
    };
    let es = await s.start(spec);
    const pub = await mqttLib.connectAsync(broker.url);
    try {
      await pub.publishAsync('plant/a/temp', JSON.stringify({ c: 21 }), { qos: 1 });
      await pub.publishAsync('plant/a/humidity', '{}', { qos: 1 });
      await waitFor('first event', async () => (await s.stored()).length === 1);
      await es.stop();
      await pub.publishAsync('plant/b/temp', JSON.stringify({ c: 23 }), { qos: 1 });
      es = await s.start(spec);
      await waitFor('queued message delivered', async () => (await s.stored()).length === 2, {
        timeoutMs: 10_000,
      });
      const evs = await s.stored();
      expect(evs.map((e) => (e.data as { topic: string; body: unknown }).body)).toEqual([
        { c: 21 },
        { c: 23 },
      ]);
      expect(evs[1]).toMatchObject({ type: 'mqtt', subject: 'sensors' });
    } finally {
      await pub.endAsync();
      await es.stop();
    }
  }, 30_000);
});

const amqpSkip = natsMissing() ?? brokerMissing('rabbitmq-server');
describe.skipIf(amqpSkip)(`amqp EventSource${skipNote(amqpSkip)}`, () => {
  let broker: Broker;
  let conn: BusConnection;
  beforeAll(async () => {
    broker = await startRabbitMQ();
    conn = await BusConnection.open({ url: natsUrl() });
  }, 90_000);
  afterAll(async () => {
    await conn?.close();
    await broker?.stop();
  });

  it('a message too large for the bus is rejected without requeue (dead-letter exchange); the queue moves on', async () => {
    const s = await setup(conn, 'maxMsgSize: 4KB');
    const es = await s.start({
      amqp: {
        big: {
          url: broker.url,
          exchangeName: 'bulk',
          exchangeType: 'topic',
          routingKey: 'bulk.*',
          queueDeclare: { name: 'sluice-bulk', durable: true },
        },
      },
    });
    const pub = await amqp.connect(broker.url);
    const ch = await pub.createChannel();
    try {
      for (const [i, body] of ['small', 'x'.repeat(8_000), 'after'].entries())
        ch.publish('bulk', 'bulk.item', Buffer.from(body), { messageId: `b-${i}` });
      await waitFor('small and after stored', async () => (await s.stored()).length === 2, {
        timeoutMs: 10_000,
      });
      expect((await s.stored()).map((e) => e.id)).toEqual(['b-0', 'b-2']);
      await waitFor('queue drained', async () => (await ch.checkQueue('sluice-bulk')).messageCount === 0);
    } finally {
      await pub.close();
      await es.stop();
    }
  }, 30_000);

  it('acks after storing; with the bus full the message goes back to the queue and is stored once room is made', async () => {
    const s = await setup(conn, 'maxMsgs: 2');
    const es = await s.start({
      amqp: {
        orders: {
          url: broker.url,
          exchangeName: 'shop',
          exchangeType: 'topic',
          routingKey: 'order.*',
          jsonBody: true,
          queueDeclare: { name: 'sluice-orders', durable: true },
        },
      },
    });
    const pub = await amqp.connect(broker.url);
    const ch = await pub.createChannel();
    try {
      for (let i = 0; i < 3; i++) {
        ch.publish('shop', 'order.created', Buffer.from(JSON.stringify({ n: i })), {
          messageId: `m-${i}`,
          contentType: 'application/json',
        });
      }
      ch.publish('shop', 'invoice.created', Buffer.from('{}'));
      // Same message id again (a resend): stored once.
      ch.publish('shop', 'order.created', Buffer.from(JSON.stringify({ n: 0 })), { messageId: 'm-0' });
      await waitFor('two stored', async () => (await s.stored()).length === 2, { timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 1500));
      expect((await s.stored()).map((e) => e.id)).toEqual(['m-0', 'm-1']);
      await s.jsm.streams.purge(eventStreamName(s.bus));
      await waitFor(
        'the third stored after room was made',
        async () => (await s.stored()).some((e) => e.id === 'm-2'),
        { timeoutMs: 15_000 },
      );
      await new Promise((r) => setTimeout(r, 500));
      const ids = (await s.stored()).map((e) => e.id);
      expect(ids.filter((id) => id === 'm-2')).toHaveLength(1);
      expect(ids).not.toContain('m-1');
      const ev = (await s.stored()).find((e) => e.id === 'm-2')!;
      expect(ev).toMatchObject({ type: 'amqp', subject: 'orders' });
      expect(ev.data).toMatchObject({ routingKey: 'order.created', exchange: 'shop', body: { n: 2 } });
      await waitFor('queue drained', async () => (await ch.checkQueue('sluice-orders')).messageCount === 0);
    } finally {
      await pub.close();
      await es.stop();
    }
  }, 60_000);
});
