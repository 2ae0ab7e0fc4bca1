// The nsq EventSource against real nsqlookupd + nsqd (built from their Go module): messages of
// a channel become events with nsqd's message id, FINished only after storing; a full bus holds
// a message (touched, not lost); a message delivered to a consumer that died before FIN comes
// back and is stored once; an nsqd crash and restart is ridden out. (NSQ's upstream spec has no
// credentials: the connection is secured with TLS client certificates only.) A message the bus
// refuses for good (too large) is counted and finished (issue 20 review, 1).
import { Reader } from 'nsqjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { type Nsq, nsqMissing, startNsq } from '../../harness/nsq.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { sourceBed } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

async function depth(nsq: Nsq, topic: string, channel: string): Promise<{ depth: number; inFlight: number }> {
  const res = await fetch(`http://${nsq.nsqdHttp}/stats?format=json&topic=${topic}&channel=${channel}`);
  const stats = (await res.json()) as {
    topics: Array<{ channels: Array<{ channel_name: string; depth: number; in_flight_count: number }> }>;
  };
  const ch = stats.topics[0]?.channels.find((c) => c.channel_name === channel);
  return { depth: ch?.depth ?? -1, inFlight: ch?.in_flight_count ?? -1 };
}

const skip = natsMissing() ?? nsqMissing();
describe.skipIf(skip)(`nsq EventSource${skipNote(skip)}`, () => {
  let nsq: Nsq;
  let conn: BusConnection;
  beforeAll(async () => {
    nsq = await startNsq();
    conn = await BusConnection.open({ url: natsUrl() });
  }, 30_000);
  afterAll(async () => {
    await conn?.close();
    await nsq?.stop();
  });
  const setup = (streamConfig = '') => sourceBed(conn, { prefix: 'nsq', name: 'nsq-es', log, streamConfig });
  const topicWithChannel = async (channel: string) => {
    const topic = uniqueName('t');
    // Create the topic and channel first so nothing published before the source connects is lost.
    for (const path of [`topic/create?topic=${topic}`, `channel/create?topic=${topic}&channel=${channel}`]) {
      await fetch(`http://${nsq.nsqdHttp}/${path}`, { method: 'POST' });
    }
    return topic;
  };

  it('messages become events with nsqd ids and are finished after storing; a full bus holds one', async () => {
    const s = await setup('maxMsgs: 2');
    const topic = await topicWithChannel('sluice');
    const es = await s.start({
      nsq: { jobs: { hostAddress: nsq.lookupdHttp, topic, channel: 'sluice', jsonBody: true } },
    });
    try {
      for (let i = 0; i < 3; i++) await nsq.publish(topic, JSON.stringify({ n: i }));
      await waitFor('two stored', async () => (await s.stored()).length === 2, { timeoutMs: 20_000 });
      const [first] = await s.stored();
      expect(first).toMatchObject({ type: 'nsq', subject: 'jobs', data: { body: { n: 0 } } });
      expect(first!.id).toMatch(/^[0-9a-f]{16}$/);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await depth(nsq, topic, 'sluice')).toEqual({ depth: 0, inFlight: 1 });
      await s.jsm.streams.purge(eventStreamName(s.bus));
      await waitFor('the held one stored', async () => (await s.stored()).length === 1, {
        timeoutMs: 20_000,
      });
      await waitFor('all finished', async () => (await depth(nsq, topic, 'sluice')).inFlight === 0);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a message whose consumer died before FIN comes back and is stored once', async () => {
    const s = await setup();
    const topic = await topicWithChannel('sluice');
    await nsq.publish(topic, 'again');
    // The crashed consumer: got the message and stored its event, then vanished without FIN.
    const dead = new Reader(topic, 'sluice', { nsqdTCPAddresses: [nsq.nsqdTcp] });
    const id = await new Promise<string>((resolve) => {
      dead.on('message', (m) => resolve(m.id));
      dead.connect();
    });
    dead.close();
    const ev = envelope({ id, source: 'nsq-es', type: 'nsq', subject: 'again', data: {} });
    await new Publisher(conn.nc).publish(eventSubject(s.bus, 'nsq-es', 'again'), encodeEvent(ev), {
      msgId: `nsq-es/again/${id}`,
    });
    const es = await s.start({ nsq: { again: { hostAddress: nsq.lookupdHttp, topic, channel: 'sluice' } } });
    try {
      await waitFor(
        'finished',
        async () => {
          const d = await depth(nsq, topic, 'sluice');
          return d.depth === 0 && d.inFlight === 0;
        },
        { timeoutMs: 30_000 },
      );
      expect((await s.stored()).map((e) => e.id)).toEqual([id]);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('rides out an nsqd crash and restart', async () => {
    const s = await setup();
    const topic = await topicWithChannel('sluice');
    const es = await s.start({ nsq: { crash: { hostAddress: nsq.lookupdHttp, topic, channel: 'sluice' } } });
    try {
      await nsq.publish(topic, 'before');
      await waitFor('first', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      await nsq.nsqd.kill();
      await new Promise((r) => setTimeout(r, 1000));
      await nsq.nsqd.start();
      await nsq.publish(topic, 'after');
      await waitFor('after the restart', async () => (await s.stored()).length === 2, { timeoutMs: 40_000 });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['before', 'after']);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a message too large for the bus is counted and finished; the channel moves on', async () => {
    const s = await setup('maxMsgSize: 4KB');
    const topic = await topicWithChannel('sluice');
    const es = await s.start({ nsq: { big: { hostAddress: nsq.lookupdHttp, topic, channel: 'sluice' } } });
    try {
      for (const m of ['small', 'x'.repeat(8_000), 'after']) await nsq.publish(topic, m);
      await waitFor('small and after stored', async () => (await s.stored()).length === 2, {
        timeoutMs: 20_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body).sort()).toEqual([
        'after',
        'small',
      ]);
      await waitFor('all finished', async () => {
        const d = await depth(nsq, topic, 'sluice');
        return d.depth === 0 && d.inFlight === 0;
      });
    } finally {
      await es.stop();
    }
  }, 30_000);
});
