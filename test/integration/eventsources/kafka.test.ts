// The kafka EventSource against a real Apache Kafka broker (KRaft, from Maven Central): messages
// become events with upstream's payload and "<topic>:<partition>:<offset>" ids; offsets are
// committed only after the bus stored the events (a full bus holds the partition, nothing is
// skipped); a message re-read after a crash is stored once; the source rides out a broker crash;
// wrong SASL credentials fail the start with a clear error; a message the bus refuses for good
// (too large) is counted and committed past without holding the partition; a record whose
// timestamp no Date can hold is published with the receive time (issue 20 review, 1 and 8).
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretKeySelector } from '../../../src/api/k8s.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { KAFKA_SASL_USER, type KafkaBroker, kafkaMissing, startKafka } from '../../harness/kafka.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { TcpProxy } from '../../harness/tcp-proxy.ts';
import { sourceBed } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
const secrets: Record<string, string> = {
  'kafka/user': KAFKA_SASL_USER.username,
  'kafka/password': KAFKA_SASL_USER.password,
  'kafka/wrong': 'not-the-password',
};
const resolveSecret = async (sel: SecretKeySelector) => secrets[`${sel.name}/${sel.key}`] ?? '';

async function setup(conn: BusConnection, streamConfig = '') {
  const registry = newRegistry();
  const t = await sourceBed(conn, {
    prefix: 'kfk',
    name: 'kafka-es',
    log,
    streamConfig,
    resolveSecret,
    registry,
  });
  return { ...t, registry };
}

const skip = natsMissing() ?? kafkaMissing();
describe.skipIf(skip)(`kafka EventSource${skipNote(skip)}`, () => {
  let broker: KafkaBroker;
  let conn: BusConnection;
  let kafka: Kafka;
  const topic = async (partitions = 1) => {
    const name = uniqueName('orders');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions }], waitForLeaders: true });
    await admin.disconnect();
    return name;
  };
  const committed = async (group: string, t: string) => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [res] = await admin.fetchOffsets({ groupId: group, topics: [t] });
      return res!.partitions.map((p) => Number(p.offset));
    } finally {
      await admin.disconnect();
    }
  };
  const produce = async (
    t: string,
    messages: Array<{ key?: string; value: string; headers?: Record<string, string> }>,
  ) => {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    await p.send({ topic: t, acks: -1, messages });
    await p.disconnect();
  };

  beforeAll(async () => {
    broker = await startKafka();
    conn = await BusConnection.open({ url: natsUrl() });
    kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  }, 90_000);
  afterAll(async () => {
    await conn?.close();
    await broker?.stop();
  });

  it('consumer group: messages become events with key, headers and offset ids; offsets committed after storing', async () => {
    const s = await setup(conn);
    const t = await topic(2);
    const group = uniqueName('g');
    const es = await s.start({
      kafka: {
        orders: {
          url: broker.bootstrap,
          topic: t,
          jsonBody: true,
          consumerGroup: { groupName: group, oldest: true },
        },
      },
    });
    try {
      await produce(t, [
        { key: 'a', value: JSON.stringify({ n: 1 }), headers: { source: 'shop' } },
        { key: 'b', value: JSON.stringify({ n: 2 }) },
        { key: 'a', value: JSON.stringify({ n: 3 }) },
      ]);
      await waitFor('three events', async () => (await s.stored()).length === 3, { timeoutMs: 30_000 });
      const evs = await s.stored();
      for (const e of evs) {
        const d = e.data as { topic: string; partition: number; offset: number };
        expect(e.id).toBe(`${t}:${d.partition}:${d.offset}`);
        expect(e).toMatchObject({ type: 'kafka', subject: 'orders', source: 'kafka-es' });
      }
      const byN = Object.fromEntries(
        evs.map((e) => {
          const d = e.data as { body: { n: number }; partition: number };
          return [d.body.n, d];
        }),
      );
      expect(byN[1]).toMatchObject({ topic: t, key: 'a', headers: { source: 'shop' }, body: { n: 1 } });
      // The key decides the partition: messages of one key keep their order.
      expect(byN[3]!.partition).toBe(byN[1]!.partition);
      await waitFor('offsets committed', async () => {
        const offs = await committed(group, t);
        return offs.reduce((a, b) => a + Math.max(0, b), 0) === 3;
      });
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a full bus holds the partition uncommitted; the rest is stored in order once room is made', async () => {
    const s = await setup(conn, 'maxMsgs: 2');
    const t = await topic();
    const group = uniqueName('g');
    const es = await s.start({
      kafka: { held: { url: broker.bootstrap, topic: t, consumerGroup: { groupName: group, oldest: true } } },
    });
    try {
      await produce(
        t,
        [0, 1, 2, 3].map((n) => ({ value: `m${n}` })),
      );
      await waitFor('two stored', async () => (await s.stored()).length === 2, { timeoutMs: 30_000 });
      await waitFor('the first two committed', async () => (await committed(group, t))[0] === 2);
      await new Promise((r) => setTimeout(r, 1500));
      expect((await committed(group, t))[0]).toBe(2);
      await s.jsm.streams.purge(eventStreamName(s.bus));
      await waitFor('the rest stored', async () => (await s.stored()).length === 2, { timeoutMs: 30_000 });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['m2', 'm3']);
      await waitFor('all committed', async () => (await committed(group, t))[0] === 4);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a message whose event was stored before a crash (offset not committed) is read again and stored once', async () => {
    const s = await setup(conn);
    const t = await topic();
    const group = uniqueName('g');
    await produce(t, [{ value: 'once' }]);
    // The crashed run had published the event of offset 0 and died before committing.
    const id = `${t}:0:0`;
    const ev = envelope({ id, source: 'kafka-es', type: 'kafka', subject: 'again', data: {} });
    await new Publisher(conn.nc).publish(eventSubject(s.bus, 'kafka-es', 'again'), encodeEvent(ev), {
      msgId: `kafka-es/again/${id}`,
    });
    const es = await s.start({
      kafka: {
        again: { url: broker.bootstrap, topic: t, consumerGroup: { groupName: group, oldest: true } },
      },
    });
    try {
      await waitFor('offset committed', async () => (await committed(group, t))[0] === 1, {
        timeoutMs: 30_000,
      });
      expect((await s.stored()).map((e) => e.id)).toEqual([id]);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('partition mode keeps its offset across restarts (a group of its own)', async () => {
    const s = await setup(conn);
    const t = await topic(2);
    const spec = { kafka: { p1: { url: broker.bootstrap, topic: t, partition: '1' } } };
    let es = await s.start(spec);
    try {
      await produce(t, [{ value: 'p1-a', partition: 1 } as never, { value: 'p0', partition: 0 } as never]);
      await waitFor('one event', async () => (await s.stored()).length === 1, { timeoutMs: 30_000 });
      await es.stop();
      await produce(t, [{ value: 'p1-b', partition: 1 } as never]);
      es = await s.start(spec);
      await waitFor('the message sent while it was away', async () => (await s.stored()).length === 2, {
        timeoutMs: 30_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['p1-a', 'p1-b']);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('rides out a broker crash: retries with backoff and consumes again once the broker is back', async () => {
    const s = await setup(conn);
    const t = await topic();
    const group = uniqueName('g');
    const es = await s.start({
      kafka: {
        crash: { url: broker.bootstrap, topic: t, consumerGroup: { groupName: group, oldest: true } },
      },
    });
    try {
      await produce(t, [{ value: 'before' }]);
      await waitFor('first event', async () => (await s.stored()).length === 1, { timeoutMs: 30_000 });
      await broker.server.kill();
      await new Promise((r) => setTimeout(r, 3000));
      await broker.server.start();
      await produce(t, [{ value: 'after' }]);
      await waitFor('event after the restart', async () => (await s.stored()).length === 2, {
        timeoutMs: 60_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['before', 'after']);
    } finally {
      await es.stop();
    }
  }, 120_000);

  it('SASL: the right credentials consume; wrong ones fail the start with a clear error', async () => {
    const s = await setup(conn);
    const t = await topic();
    const entry = (password: string) => ({
      url: broker.saslBootstrap,
      topic: t,
      consumerGroup: { groupName: uniqueName('g'), oldest: true },
      sasl: {
        mechanism: 'PLAIN',
        userSecret: { name: 'kafka', key: 'user' },
        passwordSecret: { name: 'kafka', key: password },
      },
    });
    await expect(s.start({ kafka: { bad: entry('wrong') } })).rejects.toThrow(/SASL|[Aa]uthentication/);
    const es = await s.start({ kafka: { good: entry('password') } });
    try {
      await produce(t, [{ value: 'secured' }]);
      await waitFor('event', async () => (await s.stored()).length === 1, { timeoutMs: 30_000 });
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a message too large for the bus is counted and committed past; the partition moves on', async () => {
    const s = await setup(conn, 'maxMsgSize: 4KB');
    const t = await topic();
    const group = uniqueName('g');
    const es = await s.start({
      kafka: {
        poison: { url: broker.bootstrap, topic: t, consumerGroup: { groupName: group, oldest: true } },
      },
    });
    try {
      await produce(t, [
        { value: 'before' },
        { value: 'x'.repeat(8_000) },
        { value: 'after-1' },
        { value: 'after-2' },
      ]);
      await waitFor('the later messages stored', async () => (await s.stored()).length === 3, {
        timeoutMs: 30_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual([
        'before',
        'after-1',
        'after-2',
      ]);
      await waitFor('committed past the refused one', async () => (await committed(group, t))[0] === 4);
      const failed = await s.registry.getSingleMetric('argo_events_events_processing_failed_total')?.get();
      expect(failed?.values.find((v) => v.labels.status === 'too-large')?.value).toBe(1);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a record whose timestamp no Date can hold is published with the receive time; the consumer lives', async () => {
    const s = await setup(conn);
    const t = await topic();
    const group = uniqueName('g');
    const es = await s.start({
      kafka: { ts: { url: broker.bootstrap, topic: t, consumerGroup: { groupName: group, oldest: true } } },
    });
    try {
      const p = kafka.producer();
      await p.connect();
      await p.send({
        topic: t,
        acks: -1,
        messages: [
          { value: 'before' },
          { value: 'weird-ts', timestamp: '-9000000000000000' },
          { value: 'after' },
        ],
      });
      await p.disconnect();
      await waitFor('all three stored', async () => (await s.stored()).length === 3, { timeoutMs: 30_000 });
      const evs = await s.stored();
      expect(evs.map((e) => (e.data as { body: string }).body)).toEqual(['before', 'weird-ts', 'after']);
      const weird = evs[1]!;
      expect(Number.isNaN(Date.parse((weird.data as { timestamp: string }).timestamp))).toBe(false);
      expect(Math.abs(Date.parse(weird.time) - Date.now())).toBeLessThan(60_000);
      await waitFor('all committed', async () => (await committed(group, t))[0] === 3);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('an unreachable broker makes the EventSource not ready (with the reason) until it consumes', async () => {
    const s = await setup(conn);
    const t = await topic();
    const proxy = await TcpProxy.start(Number(broker.bootstrap.split(':').pop()));
    await proxy.down();
    const es = await s.start({
      kafka: {
        late: {
          url: `127.0.0.1:${proxy.port}`,
          topic: t,
          consumerGroup: { groupName: uniqueName('g'), oldest: true },
        },
      },
    });
    try {
      expect(es.notReady()).toMatch(/kafka\/late: kafka: cannot connect/);
      await proxy.up();
      await waitFor('ready again', async () => es.notReady() === undefined, { timeoutMs: 40_000 });
      await produce(t, [{ value: 'late' }]);
      await waitFor('event', async () => (await s.stored()).length === 1, { timeoutMs: 30_000 });
    } finally {
      await es.stop();
      await proxy.down();
    }
  }, 90_000);
});
