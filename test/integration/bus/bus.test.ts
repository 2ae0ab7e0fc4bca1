// The bus layer against a real nats-server (issue 4's acceptance list).
import { type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStreamConfig, type StreamSettings } from '../../../src/api/stream-config.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { consume, ensureConsumer, working } from '../../../src/bus/consumer.ts';
import { BusError } from '../../../src/bus/errors.ts';
import { ProcessedSet } from '../../../src/bus/kv.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { type BusRef, eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { startNats } from '../../harness/nats.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';

const settings = (yaml = ''): StreamSettings => {
  const r = parseStreamConfig(yaml);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.settings;
};
const enc = (s: string) => new TextEncoder().encode(s);

describe.skipIf(natsMissing())(`bus layer${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });
  const newBus = (): BusRef => ({ namespace: uniqueName('ns'), busName: 'default' });

  it('rejects past maxMsgs and maxBytes with StreamFull and drops nothing accepted', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const pub = new Publisher(conn.nc);
    for (const [cfg, payload] of [
      ['maxMsgs: 5', 'x'],
      ['maxBytes: 2048', 'y'.repeat(300)],
    ] as const) {
      const bus = newBus();
      await ensureStreams(jsm, bus, settings(cfg), 1);
      const subject = eventSubject(bus, 'es', 'ev');
      const accepted: string[] = [];
      let full: unknown;
      for (let i = 0; i < 20 && !full; i++) {
        try {
          await pub.publish(subject, enc(`${payload}${i}`), { msgId: `id-${i}` });
          accepted.push(`${payload}${i}`);
        } catch (err) {
          full = err;
        }
      }
      expect(full).toBeInstanceOf(BusError);
      expect((full as BusError).code).toBe('StreamFull');
      expect((full as BusError).retryable).toBe(true);
      const info = await jsm.streams.info(eventStreamName(bus));
      expect(info.state.messages).toBe(accepted.length);
      const first = await jsm.streams.getMessage(eventStreamName(bus), { seq: 1 });
      expect(first?.string()).toBe(accepted[0]);
    }
  });

  it('rejects an event over maxMsgSize with MessageTooLarge', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgSize: 1KB'), 1);
    const pub = new Publisher(conn.nc);
    const subject = eventSubject(bus, 'es', 'ev');
    await pub.publish(subject, enc('small'), { msgId: 'a' });
    const err = await pub.publish(subject, new Uint8Array(4096), { msgId: 'b' }).catch((e: unknown) => e);
    expect((err as BusError).code).toBe('MessageTooLarge');
    expect((err as BusError).retryable).toBe(false);
    expect((await jsm.streams.info(eventStreamName(bus))).state.messages).toBe(1);
  });

  it('stores one message for the same id inside the duplicates window', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings(), 1);
    const pub = new Publisher(conn.nc);
    const subject = eventSubject(bus, 'es', 'ev');
    const a = await pub.publish(subject, enc('1'), { msgId: 'same' });
    const b = await pub.publish(subject, enc('1'), { msgId: 'same' });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    expect((await jsm.streams.info(eventStreamName(bus))).state.messages).toBe(1);
  });

  it('redelivers after ack_wait, working() holds a slow message, max_deliver is honoured', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const js = jetstream(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings(), 1);
    const pub = new Publisher(conn.nc);
    const stream = eventStreamName(bus);
    const mk = async (durable: string, event: string, maxDeliver = -1) => {
      await ensureConsumer(jsm, {
        stream,
        durable,
        filterSubject: eventSubject(bus, 'es', event),
        ackWaitMs: 1000,
        maxDeliver,
        deliver: 'all',
      });
      await pub.publish(eventSubject(bus, 'es', event), enc(event), { msgId: `${event}-1` });
      return js.consumers.get(stream, durable);
    };

    // Not acked → comes back after ack_wait with a higher delivery count.
    const c1 = await mk('redeliver', 'e1');
    const m1 = await c1.next({ expires: 5000 });
    expect(m1?.info.deliveryCount).toBe(1);
    const again = await c1.next({ expires: 5000 });
    expect(again?.info.deliveryCount).toBe(2);
    expect(again?.redelivered).toBe(true);
    again?.ack();

    // Slow work with working() heartbeats: no redelivery during 2.5 s (> 2 × ack_wait).
    const c2 = await mk('slow', 'e2');
    const m2 = (await c2.next({ expires: 5000 }))!;
    await working(m2, () => new Promise((r) => setTimeout(r, 2500)), 300);
    await m2.ackAck();
    expect(await c2.next({ expires: 1500 })).toBeNull();

    // max_deliver 2: delivered twice, then never again.
    const c3 = await mk('maxdeliver', 'e3', 2);
    const seen: number[] = [];
    for (;;) {
      const m = await c3.next({ expires: 2500 });
      if (!m) break;
      seen.push(m.info.deliveryCount);
    }
    expect(seen).toEqual([1, 2]);
  });

  it('keeps two namespaces with identically named EventSources apart', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const js = jetstream(conn.nc);
    const pub = new Publisher(conn.nc);
    const busA = newBus();
    const busB = newBus();
    for (const b of [busA, busB]) await ensureStreams(jsm, b, settings(), 1);
    for (const [b, tag] of [
      [busA, 'A'],
      [busB, 'B'],
    ] as const) {
      await ensureConsumer(jsm, {
        stream: eventStreamName(b),
        durable: 'sensor_dep',
        filterSubject: eventSubject(b, 'webhook', 'example'),
        deliver: 'all',
      });
      for (let i = 0; i < 10; i++)
        await pub.publish(eventSubject(b, 'webhook', 'example'), enc(`${tag}${i}`), { msgId: `${tag}${i}` });
    }
    for (const [b, tag] of [
      [busA, 'A'],
      [busB, 'B'],
    ] as const) {
      const got: string[] = [];
      const ac = new AbortController();
      const c = consume(
        js,
        eventStreamName(b),
        'sensor_dep',
        async (m: JsMsg) => {
          got.push(m.string());
          m.ack();
          if (got.length === 10) ac.abort();
        },
        { signal: ac.signal },
      );
      await c;
      expect(got.every((g) => g.startsWith(tag))).toBe(true);
      expect(got).toHaveLength(10);
    }
  });

  it('ensureStreams is idempotent, updates limits in place and reports an impossible change', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    expect((await ensureStreams(jsm, bus, settings('maxMsgs: 100'), 1)).events.action).toBe('created');
    expect((await ensureStreams(jsm, bus, settings('maxMsgs: 100'), 1)).events.action).toBe('unchanged');
    const upd = await ensureStreams(jsm, bus, settings('maxMsgs: 200\nmaxAge: 1h'), 1);
    expect(upd.events).toMatchObject({ action: 'updated', fields: ['max_msgs', 'max_age'] });
    const live = await jsm.streams.info(eventStreamName(bus));
    expect(live.config.max_msgs).toBe(200);
    expect(live.config.max_age).toBe(3_600_000_000_000);
    const blocked = await ensureStreams(
      jsm,
      bus,
      settings('maxMsgs: 200\nmaxAge: 1h\nretention: workqueue'),
      1,
    );
    expect(blocked.events).toMatchObject({ action: 'blocked', fields: ['retention'] });
    expect((await jsm.streams.info(eventStreamName(bus))).config.retention).toBe('limits');
  });

  it('processed-set: exactly one markIfAbsent wins per key', async () => {
    const set = await ProcessedSet.open(conn.nc, uniqueName('processed'), 60_000);
    const results = await Promise.all(Array.from({ length: 10 }, () => set.markIfAbsent('trigger/evt-1')));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await set.has('trigger/evt-1')).toBe(true);
    expect(await set.has('trigger/evt-2')).toBe(false);
  });
});

describe.skipIf(natsMissing())(`bus across a nats-server crash${skipNote(natsMissing())}`, () => {
  it('keeps every acked publish; the same publisher and consumer objects recover after restart', async () => {
    const server = await startNats();
    const conn = await BusConnection.open({ url: server.url });
    try {
      const jsm = await jetstreamManager(conn.nc);
      const bus: BusRef = { namespace: 'crash', busName: 'default' };
      await ensureStreams(jsm, bus, settings(), 1);
      const stream = eventStreamName(bus);
      await ensureConsumer(jsm, {
        stream,
        durable: 's_d',
        filterSubject: eventSubject(bus, 'es', 'ev'),
        ackWaitMs: 1000,
        deliver: 'all',
      });
      const pub = new Publisher(conn.nc, { timeoutMs: 2000 });
      const acked = new Set<string>();
      const send = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          const id = `m${i}`;
          for (let attempt = 0; ; attempt++) {
            try {
              await pub.publish(eventSubject(bus, 'es', 'ev'), enc(id), { msgId: id });
              acked.add(id);
              break;
            } catch (err) {
              if (!(err instanceof BusError) || !err.retryable || attempt > 60) throw err;
              await new Promise((r) => setTimeout(r, 250));
            }
          }
        }
      };
      await send(0, 200);
      const states: string[] = [];
      conn.on('state', (s) => states.push(s));
      await server.kill();
      const restart = server.start();
      await send(200, 300); // retries until the server is back
      await restart;
      const js = jetstream(conn.nc);
      const got = new Set<string>();
      const ac = new AbortController();
      await consume(
        js,
        stream,
        's_d',
        async (m) => {
          got.add(m.string());
          m.ack();
          if (got.size === 300) ac.abort();
        },
        { signal: ac.signal },
      );
      expect(got).toEqual(acked);
      expect(acked.size).toBe(300);
      await waitFor('state events', () => states.includes('connected'));
      expect(states[0]).toBe('disconnected');
      expect(states.at(-1)).toBe('connected');
    } finally {
      await conn.close();
      await server.stop();
    }
  });
});
