// ensureStreams against a real server: idempotent, limits updated in place, and a change that
// JetStream cannot make in place reported as a result instead of thrown or half-applied.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { BusError } from '../../../src/bus/errors.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { dlqStreamName, eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { enc, newBus, settings, storedBodies } from './fixtures.ts';

describe.skipIf(natsMissing())(`ensureStreams${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('creates once, then reports unchanged', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    const first = await ensureStreams(jsm, bus, settings('maxMsgs: 100'));
    expect([first.events.action, first.dlq.action]).toEqual(['created', 'created']);
    for (let i = 0; i < 2; i++) {
      const again = await ensureStreams(jsm, bus, settings('maxMsgs: 100'));
      expect([again.events.action, again.dlq.action]).toEqual(['unchanged', 'unchanged']);
    }
    const live = await jsm.streams.info(eventStreamName(bus));
    expect(live.config).toMatchObject({
      storage: 'file',
      discard: 'new',
      max_msgs: 100,
      retention: 'limits',
    });
    // Dead letters are bounded (a full DLQ refuses, never drops) and expire after dlqMaxAge.
    expect((await jsm.streams.info(dlqStreamName(bus))).config).toMatchObject({
      discard: 'new',
      max_age: 14 * 24 * 3600 * 1e9,
      max_bytes: 64 * 1024 ** 2,
    });
  });

  it('updates limits in place, keeping the stored events', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgs: 100'));
    const pub = new Publisher(conn);
    for (let i = 0; i < 3; i++)
      await pub.publish(subjectFor(bus, 'es', 'ev'), enc(`m${i}`), { msgId: `m${i}` });
    // A consumer (made by an older sluice) that has acknowledged the first event only.
    await jsm.consumers.add(eventStreamName(bus), {
      durable_name: 'old',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
    const first = await jetstream(conn.nc)
      .consumers.get(eventStreamName(bus), 'old')
      .then((c) => c.next());
    expect(first?.string()).toBe('m0');
    expect(await first?.ackAck()).toBe(true);

    const upd = await ensureStreams(
      jsm,
      bus,
      settings(
        'maxMsgs: 200\nmaxAge: 1h\nmaxBytes: 1Mi\nmaxMsgSize: 64Ki\nduplicates: 30s\ndiscard: old\nretention: interest',
      ),
    );
    expect(upd.events.action).toBe('updated');
    expect(upd.events.fields.sort()).toEqual(
      ['discard', 'duplicate_window', 'max_age', 'max_bytes', 'max_msg_size', 'max_msgs', 'retention'].sort(),
    );
    expect((await jsm.streams.info(eventStreamName(bus))).config).toMatchObject({
      max_msgs: 200,
      max_age: 3_600_000_000_000,
      max_bytes: 1024 * 1024,
      max_msg_size: 64 * 1024,
      duplicate_window: 30_000_000_000,
      discard: 'old',
      retention: 'interest',
    });
    expect(
      (
        await ensureStreams(
          jsm,
          bus,
          settings(
            'maxMsgs: 200\nmaxAge: 1h\nmaxBytes: 1Mi\nmaxMsgSize: 64Ki\nduplicates: 30s\ndiscard: old\nretention: interest',
          ),
        )
      ).events.action,
    ).toBe('unchanged');
    // The switch to interest retention keeps what a consumer still needs and trims the history
    // every consumer has acknowledged.
    expect(upd.events.message).toMatch(
      /[0-9]+ event\(s\) every consumer had already acknowledged were removed/,
    );
    expect(await storedBodies(jsm, eventStreamName(bus))).toEqual(['m1', 'm2']);
  });

  it('reports a change JetStream cannot make in place and leaves the stream as it was', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgs: 100'));
    const blocked = await ensureStreams(jsm, bus, settings('maxMsgs: 500\nretention: workqueue'));
    expect(blocked.events).toMatchObject({ action: 'blocked', fields: ['retention'] });
    expect(blocked.events.message).toMatch(/cannot change retention in place .*recreate/);
    const live = await jsm.streams.info(eventStreamName(bus));
    expect(live.config).toMatchObject({ retention: 'limits', max_msgs: 100 });
    // The DLQ stream is still looked after.
    expect(blocked.dlq.action).toBe('unchanged');
  });

  it('throws BusError Invalid when the server refuses the config (3 replicas on one server)', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    const err = await ensureStreams(jsm, bus, settings('replicas: 3')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusError);
    expect(err).toMatchObject({ code: 'Invalid', retryable: false });
    expect((err as BusError).message).toMatch(/replicas > 1 not supported/);
  });
});
