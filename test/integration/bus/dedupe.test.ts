// Nats-Msg-Id = event id: the same event published twice inside the duplicates window is stored once.
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { enc, newBus, settings, storedBodies } from './fixtures.ts';

describe.skipIf(natsMissing())(`duplicate event ids${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('stores one message for the same id inside the duplicates window, one after the other or at once', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('duplicates: 1m'));
    const pub = new Publisher(conn);
    const subject = subjectFor(bus, 'es', 'ev');

    const first = await pub.publish(subject, enc('first'), { msgId: 'evt-1' });
    const again = await pub.publish(subject, enc('retried delivery'), { msgId: 'evt-1' });
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ duplicate: true, seq: first.seq });

    // Ten copies in flight together (a retrying source): still one stored.
    const burst = await Promise.all(
      Array.from({ length: 10 }, () => pub.publish(subject, enc('burst'), { msgId: 'evt-2' })),
    );
    expect(burst.filter((a) => !a.duplicate)).toHaveLength(1);
    expect(new Set(burst.map((a) => a.seq)).size).toBe(1);

    // A different id is a different event.
    await pub.publish(subject, enc('other'), { msgId: 'evt-3' });
    expect(await storedBodies(jsm, eventStreamName(bus))).toEqual(['first', 'burst', 'other']);
  });
});
