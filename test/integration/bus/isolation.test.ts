// Two namespaces sharing one NATS, each with an EventSource, event and Sensor dependency of the
// same names: each Sensor receives exactly its own namespace's events.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { consume, ensureDependencyConsumer } from '../../../src/bus/consumer.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, subjectFor } from '../../../src/bus/subjects.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { enc, settings } from './fixtures.ts';

describe.skipIf(natsMissing())(`namespaces sharing one NATS${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('never delivers one namespace’s events to the other', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const js = jetstream(conn.nc);
    const pub = new Publisher(conn);
    // Same bus, EventSource, event, Sensor and dependency names; only the namespace differs.
    const suffix = uniqueName('team');
    const buses: BusRef[] = [
      { namespace: `${suffix}-a`, busName: 'default' },
      { namespace: `${suffix}-b`, busName: 'default' },
    ];
    const got = new Map<string, string[]>();
    const ac = new AbortController();
    const loops: Promise<void>[] = [];
    for (const bus of buses) {
      await ensureStreams(jsm, bus, settings());
      const { stream, durable } = await ensureDependencyConsumer(jsm, {
        bus,
        sensor: 'webhook-sensor',
        dependency: 'dep',
        eventSourceName: 'webhook',
        eventName: 'example',
        deliver: 'all',
      });
      const seen: string[] = [];
      got.set(bus.namespace, seen);
      loops.push(
        consume(
          js,
          stream,
          durable,
          (m) => {
            seen.push(m.string());
            m.ack();
          },
          { signal: ac.signal },
        ),
      );
    }
    // Interleave both namespaces' publishes, plus names that only escaping keeps apart.
    for (let i = 0; i < 20; i++) {
      for (const [bus, tag] of [
        [buses[0]!, 'A'],
        [buses[1]!, 'B'],
      ] as const) {
        await pub.publish(subjectFor(bus, 'webhook', 'example'), enc(`${tag}${i}`), { msgId: `${tag}${i}` });
        await pub.publish(subjectFor(bus, 'webhook.example', ''), enc(`${tag}-dotted${i}`), {
          msgId: `${tag}d${i}`,
        });
      }
    }
    await waitFor('both sensors to receive their events', () =>
      [...got.values()].every((s) => s.length >= 20),
    );
    ac.abort();
    await Promise.all(loops);
    const expected = (tag: string) => Array.from({ length: 20 }, (_, i) => `${tag}${i}`);
    expect(got.get(buses[0]!.namespace)).toEqual(expected('A'));
    expect(got.get(buses[1]!.namespace)).toEqual(expected('B'));
  });
});
