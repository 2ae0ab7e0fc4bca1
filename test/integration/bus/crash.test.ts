// nats-server SIGKILLed under load and restarted on the same store: every publish that got a
// PubAck is still in the stream and is delivered, and the same BusConnection, Publisher and
// consume() loop carry on (no objects recreated, no process restart).
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { BusConnection, type ConnectionState } from '../../../src/bus/connection.ts';
import { consume, ensureDependencyConsumer } from '../../../src/bus/consumer.ts';
import { BusError } from '../../../src/bus/errors.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { startNats } from '../../harness/nats.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, skipNote } from '../../harness/shared.ts';
import { enc, settings, storedBodies } from './fixtures.ts';

describe.skipIf(natsMissing())(`bus across a nats-server crash${skipNote(natsMissing())}`, () => {
  it('keeps every acked publish; publisher and consumer recover on the same objects', async () => {
    const server = await startNats();
    const conn = await BusConnection.open({ url: server.url, reconnectInitialMs: 100, reconnectMaxMs: 1000 });
    const states: ConnectionState[] = [];
    const watcher = (async () => {
      for await (const s of conn.states()) states.push(s);
    })();
    const ac = new AbortController();
    let loop: Promise<void> | undefined;
    try {
      const jsm = await jetstreamManager(conn.nc);
      const bus: BusRef = { namespace: 'crash', busName: 'default' };
      await ensureStreams(jsm, bus, settings());
      const { stream, durable } = await ensureDependencyConsumer(jsm, {
        bus,
        sensor: 'sensor',
        dependency: 'dep',
        eventSourceName: 'es',
        eventName: 'ev',
        ackWaitMs: 1000,
        deliver: 'all',
      });
      const received = new Set<string>();
      loop = consume(
        jetstream(conn.nc),
        stream,
        durable,
        (m) => {
          received.add(m.string());
          m.ack();
        },
        { signal: ac.signal, expiresMs: 2000, idleHeartbeatMs: 500 },
      );

      const pub = new Publisher(conn, { timeoutMs: 1000 });
      const acked = new Set<string>();
      const codes = new Set<string>();
      // A source that retries retryable failures with the same event id, 20 events in flight.
      const send = async (id: string) => {
        for (;;) {
          try {
            await pub.publish(subjectFor(bus, 'es', 'ev'), enc(id), { msgId: id });
            acked.add(id);
            return;
          } catch (err) {
            if (!(err instanceof BusError) || !err.retryable) throw err;
            codes.add(err.code);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      };
      // Publish continuously (batches of 20 in flight) until told to stop.
      let stopSending = false;
      let next = 0;
      const producer = (async () => {
        while (!stopSending) {
          const ids = Array.from({ length: 20 }, () => `m${next++}`);
          await Promise.all(ids.map(send));
        }
      })();

      await waitFor('events flowing end to end', () => received.size >= 200, { intervalMs: 10 });
      await server.kill();
      const ackedAtKill = acked.size;
      await waitFor('publishes failing while the server is down', () => codes.size > 0, { intervalMs: 10 });
      expect(conn.state).not.toBe('connected');
      await server.start();
      await waitFor('publishing to resume', () => acked.size >= ackedAtKill + 200, { timeoutMs: 30_000 });
      stopSending = true;
      await producer;

      expect(acked.size).toBe(next);
      const stored = new Set(await storedBodies(jsm, eventStreamName(bus)));
      for (const id of acked) expect(stored.has(id), `${id} acked but not stored`).toBe(true);
      // The consume() loop started before the crash delivers everything, including what came after.
      await waitFor('every acked event to be delivered', () => [...acked].every((id) => received.has(id)), {
        timeoutMs: 30_000,
      });
      expect(states).toContain('disconnected');
      expect(states.at(-1)).toBe('connected');
      expect(conn.reconnects).toBeGreaterThanOrEqual(1);
      // During the outage the publisher said "unavailable" or "timed out", nothing else.
      for (const c of codes) expect(['BusUnavailable', 'Timeout']).toContain(c);
      expect(codes.has('BusUnavailable')).toBe(true);
    } finally {
      ac.abort();
      await loop?.catch(() => undefined);
      await conn.close();
      await watcher;
      await server.stop();
    }
    expect(states.at(-1)).toBe('closed');
  });
});
