// Consumer lifecycle: deliver policy of a new consumer, settings updated in place, and removal of
// the consumers of dependencies a Sensor no longer has.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { deleteSensorConsumers, ensureDependencyConsumer } from '../../../src/bus/consumer.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { consumerName, eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { enc, newBus, settings } from './fixtures.ts';

describe.skipIf(natsMissing())(`dependency consumers${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('starts a new consumer at new or all events, and updates its limits in place', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const js = jetstream(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings());
    await new Publisher(conn).publish(subjectFor(bus, 'es', 'ev'), enc('old'), { msgId: 'old' });
    const dep = (dependency: string, deliver: 'new' | 'all') => ({
      bus,
      sensor: 's',
      dependency,
      eventSourceName: 'es',
      eventName: 'ev',
      deliver,
    });
    const fromAll = await ensureDependencyConsumer(jsm, dep('all', 'all'));
    const fromNew = await ensureDependencyConsumer(jsm, dep('new', 'new'));
    expect(fromAll.action).toBe('created');
    expect(
      (await (await js.consumers.get(fromAll.stream, fromAll.durable)).next({ expires: 2000 }))?.string(),
    ).toBe('old');
    expect(
      await (await js.consumers.get(fromNew.stream, fromNew.durable)).next({ expires: 1000 }),
    ).toBeNull();

    expect((await ensureDependencyConsumer(jsm, dep('new', 'new'))).action).toBe('unchanged');
    const changed = await ensureDependencyConsumer(jsm, {
      ...dep('new', 'new'),
      maxAckPending: 7,
      ackWaitMs: 2000,
    });
    expect(changed.action).toBe('updated');
    const ci = await jsm.consumers.info(fromNew.stream, fromNew.durable);
    expect(ci.config).toMatchObject({ max_ack_pending: 7, ack_wait: 2_000_000_000, ack_policy: 'explicit' });
  });

  it("deletes only the consumers of a Sensor's removed dependencies", async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings());
    const make = (sensor: string, dependency: string) =>
      ensureDependencyConsumer(jsm, {
        bus,
        sensor,
        dependency,
        eventSourceName: 'es',
        eventName: dependency,
      });
    for (const d of ['keep', 'drop.one', 'drop_two']) await make('s1', d);
    await make('s2', 'drop.one'); // same dependency name, other Sensor
    const removed = await deleteSensorConsumers(jsm, bus, 's1', ['keep']);
    expect(removed.sort()).toEqual([consumerName('s1', 'drop.one'), consumerName('s1', 'drop_two')].sort());
    const left: string[] = [];
    for await (const ci of jsm.consumers.list(eventStreamName(bus))) left.push(ci.name);
    expect(left.sort()).toEqual([consumerName('s1', 'keep'), consumerName('s2', 'drop.one')].sort());
    expect(await deleteSensorConsumers(jsm, newBus(), 's1', [])).toEqual([]);
  });
});
