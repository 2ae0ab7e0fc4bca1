// Redelivery rules of the dependency consumers: ack_wait, the working() heartbeat, max_deliver,
// and the settle helpers (nak with delay, term).
import { type Consumer, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import {
  ack,
  type DependencyConsumerSpec,
  deliveryCount,
  ensureDependencyConsumer,
  isRedelivery,
  nak,
  term,
  working,
} from '../../../src/bus/consumer.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, subjectFor } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { enc, newBus, settings } from './fixtures.ts';

const ACK_WAIT = 1000;

describe.skipIf(natsMissing())(`redelivery${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  let bus: BusRef;
  let pub: Publisher;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
    bus = newBus();
    await ensureStreams(await jetstreamManager(conn.nc), bus, settings());
    pub = new Publisher(conn);
  });
  afterAll(async () => {
    await conn?.close();
  });

  /** A dependency consumer on its own event, with one event published to it. */
  async function dependencyWithOneEvent(
    name: string,
    tuning: Partial<DependencyConsumerSpec> = {},
  ): Promise<Consumer> {
    const jsm = await jetstreamManager(conn.nc);
    const { stream, durable } = await ensureDependencyConsumer(jsm, {
      bus,
      sensor: 'sensor',
      dependency: name,
      eventSourceName: 'es',
      eventName: name,
      ackWaitMs: ACK_WAIT,
      deliver: 'all',
      ...tuning,
    });
    await pub.publish(subjectFor(bus, 'es', name), enc(name), { msgId: `${name}-1` });
    return jetstream(conn.nc).consumers.get(stream, durable);
  }

  it('redelivers a message that is not acked within ack_wait, counting deliveries', async () => {
    const c = await dependencyWithOneEvent('unacked');
    const first = await c.next({ expires: 5000 });
    expect(first && deliveryCount(first)).toBe(1);
    expect(first && isRedelivery(first)).toBe(false);
    const t0 = Date.now();
    const again = await c.next({ expires: 5000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(ACK_WAIT - 300);
    expect(again?.string()).toBe('unacked');
    expect(again && deliveryCount(again)).toBe(2);
    expect(again && isRedelivery(again)).toBe(true);
    expect(again && (await ack(again, true))).toBe(true);
    expect(await c.next({ expires: ACK_WAIT * 2 })).toBeNull();
  });

  it('working() keeps slow work from being redelivered past ack_wait', async () => {
    const c = await dependencyWithOneEvent('slow');
    const m = (await c.next({ expires: 5000 }))!;
    // While the work runs for 2.5 × ack_wait, another puller on the same consumer gets nothing.
    const rival = c.next({ expires: ACK_WAIT * 2.5 });
    await working(m, () => new Promise((r) => setTimeout(r, ACK_WAIT * 2.5)), ACK_WAIT / 4);
    expect(await ack(m, true)).toBe(true);
    expect(await rival).toBeNull();
    expect(await c.next({ expires: ACK_WAIT * 1.5 })).toBeNull();
  });

  it('honours max_deliver: no delivery after the last allowed one', async () => {
    const c = await dependencyWithOneEvent('poison', { maxDeliver: 2 });
    const seen: number[] = [];
    for (;;) {
      const m = await c.next({ expires: ACK_WAIT * 2.5 });
      if (!m) break;
      seen.push(deliveryCount(m));
    }
    expect(seen).toEqual([1, 2]);
    const info = await c.info();
    expect(info.num_ack_pending + info.num_pending).toBe(0);
  });

  it('nak with a delay brings the message back after that delay; term never again', async () => {
    const c = await dependencyWithOneEvent('naked', { ackWaitMs: 30_000 });
    const m = (await c.next({ expires: 5000 }))!;
    const t0 = Date.now();
    nak(m, 600);
    const back = await c.next({ expires: 5000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(back && deliveryCount(back)).toBe(2);
    term(back!, 'dead-lettered by the test');
    expect(await c.next({ expires: 1500 })).toBeNull();
  });
});
