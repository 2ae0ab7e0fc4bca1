// Stream limits and the publisher's typed errors, triggered on a real nats-server. These tests are
// also where the server's err_codes in src/bus/errors.ts were observed.
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { BusError, ServerCode } from '../../../src/bus/errors.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { enc, newBus, settings, storedBodies } from './fixtures.ts';

const failure = (p: Promise<unknown>): Promise<BusError> =>
  p.then(
    () => {
      throw new Error('expected the publish to fail');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(BusError);
      return err as BusError;
    },
  );

describe.skipIf(natsMissing())(`stream limits and publish errors${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('maxMsgs: pipelined publishes past the limit get StreamFull and every accepted event stays', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgs: 5'));
    const pub = new Publisher(conn);
    const subject = subjectFor(bus, 'es', 'ev');
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => pub.publish(subject, enc(`m${i}`), { msgId: `id-${i}` })),
    );
    const accepted = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`m${i}`] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as BusError] : []));
    // One connection keeps order: the first five fit, the rest are refused.
    expect(accepted).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(refused).toHaveLength(7);
    for (const e of refused) {
      expect(e).toMatchObject({ code: 'StreamFull', retryable: true, serverCode: ServerCode.StoreFailed });
      expect(e.message).toMatch(/maximum messages exceeded/);
    }
    expect(await storedBodies(jsm, eventStreamName(bus))).toEqual(accepted);
    expect(pub.pending).toBe(0);
  });

  it('maxBytes: publishing past it gets StreamFull and nothing accepted is dropped', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxBytes: 8Ki'));
    const pub = new Publisher(conn);
    const subject = subjectFor(bus, 'es', 'ev');
    const accepted: string[] = [];
    let full: BusError | undefined;
    for (let i = 0; i < 50 && !full; i++) {
      const body = `${i}:${'y'.repeat(1000)}`;
      try {
        await pub.publish(subject, enc(body), { msgId: `id-${i}` });
        accepted.push(body);
      } catch (err) {
        full = err as BusError;
      }
    }
    expect(full).toMatchObject({ code: 'StreamFull', retryable: true, serverCode: ServerCode.StoreFailed });
    expect(full?.message).toMatch(/maximum bytes exceeded/);
    expect(accepted.length).toBeGreaterThan(3);
    expect(await storedBodies(jsm, eventStreamName(bus))).toEqual(accepted);
  });

  it("maxMsgSize and the server's max_payload: an oversize event gets MessageTooLarge, smaller ones pass", async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgSize: 1Ki'));
    const pub = new Publisher(conn);
    const subject = subjectFor(bus, 'es', 'ev');
    await pub.publish(subject, enc('small'), { msgId: 'a' });

    const overStream = await failure(pub.publish(subject, new Uint8Array(4096), { msgId: 'b' }));
    expect(overStream).toMatchObject({
      code: 'MessageTooLarge',
      retryable: false,
      serverCode: ServerCode.MessageTooLarge,
    });

    // Past the server's max_payload the client refuses before sending.
    const maxPayload = conn.nc.info?.max_payload ?? 1024 * 1024;
    const overServer = await failure(pub.publish(subject, new Uint8Array(maxPayload + 1), { msgId: 'c' }));
    expect(overServer).toMatchObject({ code: 'MessageTooLarge', retryable: false });
    expect(overServer.message).toMatch(/max_payload/);

    await pub.publish(subject, enc('after'), { msgId: 'd' });
    expect(await storedBodies(jsm, eventStreamName(bus))).toEqual(['small', 'after']);
    expect(pub.pending).toBe(0);
  });

  it('no stream for the subject is BusUnavailable; a subject nobody answers is Timeout', async () => {
    const pub = new Publisher(conn, { timeoutMs: 300 });
    const noStream = await failure(pub.publish(subjectFor(newBus(), 'es', 'ev'), enc('x'), { msgId: 'x' }));
    expect(noStream).toMatchObject({ code: 'BusUnavailable', retryable: true });

    // A plain subscriber takes the request and never answers: the PubAck never comes.
    const silent = uniqueName('silent');
    const sub = conn.nc.subscribe(silent);
    try {
      const timeout = await failure(pub.publish(silent, enc('x'), { msgId: 'y' }));
      expect(timeout).toMatchObject({ code: 'Timeout', retryable: true });
    } finally {
      sub.unsubscribe();
    }
  });

  it('bounds the publishes in flight; callers beyond the bound wait for a slot', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings());
    const pub = new Publisher(conn, { maxInFlight: 4 });
    const subject = subjectFor(bus, 'es', 'ev');
    let peak = 0;
    const all = Array.from({ length: 40 }, (_, i) => {
      const p = pub.publish(subject, enc(`m${i}`), { msgId: `m${i}` });
      peak = Math.max(peak, pub.pending);
      return p;
    });
    expect(pub.queued).toBe(36);
    const acks = await Promise.all(all);
    expect(peak).toBe(4);
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    await pub.idle();
    expect(pub.pending).toBe(0);
  });
});
