// Backpressure means backlog: under the default interest retention maxMsgs bounds what the
// Sensors that exist have not consumed yet, never history. A consumer that keeps up is never
// refused; one that falls behind makes the stream refuse exactly at the limit and accept again as
// soon as it acks; an event nobody consumes is acknowledged and not kept; and the drops of the
// lossy settings (discard old, maxAge) are read off the stream head.
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusConnection } from '../../../src/bus/connection.ts';
import { ensureDependencyConsumer } from '../../../src/bus/consumer.ts';
import { headDrops, sampleStream } from '../../../src/bus/drops.ts';
import type { BusError } from '../../../src/bus/errors.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { dlqSubject, eventStreamName, subjectFor } from '../../../src/bus/subjects.ts';
import { busOperations } from '../../../src/controller/bus-ops.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { enc, newBus, settings } from './fixtures.ts';

describe.skipIf(natsMissing())(`interest retention${skipNote(natsMissing())}`, () => {
  let conn: BusConnection;
  const conn_ = () => conn;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  const dependency = async (bus: ReturnType<typeof newBus>, sensor = 'sensor') => {
    const jsm = await jetstreamManager(conn.nc);
    const c = await ensureDependencyConsumer(jsm, {
      bus,
      sensor,
      dependency: 'dep',
      eventSourceName: 'es',
      eventName: 'ev',
      maxAckPending: 1000,
    });
    return jetstream(conn.nc).consumers.get(c.stream, c.durable);
  };

  it('is the default; a consumer that keeps up takes 4x maxMsgs events and none is refused', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgs: 50\nretention: interest'));
    expect((await jsm.streams.info(eventStreamName(bus))).config.retention).toBe('interest');
    const consumer = await dependency(bus);
    const pub = new Publisher(conn);
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      await pub.publish(subjectFor(bus, 'es', 'ev'), enc(`m${i}`), { msgId: `m${i}` }).catch(() => refused++);
      const m = await consumer.next({ expires: 2000 });
      expect(m?.string()).toBe(`m${i}`);
      expect(await m?.ackAck()).toBe(true);
    }
    expect(refused).toBe(0);
    const info = await jsm.streams.info(eventStreamName(bus));
    expect(info.state.last_seq).toBe(200);
    expect(info.state.messages).toBe(0);
  });

  it('a consumer behind: refused at exactly maxMsgs unconsumed, accepted again once it acks', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgs: 20\nretention: interest'));
    const consumer = await dependency(bus);
    const pub = new Publisher(conn);
    const subject = subjectFor(bus, 'es', 'ev');
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => pub.publish(subject, enc(`m${i}`), { msgId: `m${i}` })),
    );
    const accepted = results.filter((r) => r.status === 'fulfilled').length;
    expect(accepted).toBe(20);
    for (const r of results)
      if (r.status === 'rejected') expect((r.reason as BusError).code).toBe('StreamFull');
    // Consume five: five more fit.
    const batch = await consumer.fetch({ max_messages: 5, expires: 2000 });
    for await (const m of batch) await m.ackAck();
    const more = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => pub.publish(subject, enc(`n${i}`), { msgId: `n${i}` })),
    );
    expect(more.filter((r) => r.status === 'fulfilled').length).toBe(5);
    expect((await jsm.streams.info(eventStreamName(bus))).state.messages).toBe(20);
  });

  it('an event no consumer wants is acknowledged and not kept; another Sensor still gets its own', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('retention: interest'));
    const consumer = await dependency(bus);
    const pub = new Publisher(conn);
    const ack = await pub.publish(subjectFor(bus, 'es', 'nobody'), enc('x'), { msgId: 'x' });
    expect(ack.seq).toBe(1);
    await pub.publish(subjectFor(bus, 'es', 'ev'), enc('y'), { msgId: 'y' });
    const info = await jsm.streams.info(eventStreamName(bus));
    expect(info.state.messages).toBe(1);
    expect((await consumer.next({ expires: 2000 }))?.string()).toBe('y');
  });

  it('discard old under a full backlog: the drops are counted off the stream head', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxMsgs: 10\nretention: interest\ndiscard: old'));
    await dependency(bus); // never consumes
    const pub = new Publisher(conn);
    const subject = subjectFor(bus, 'es', 'ev');
    for (let i = 0; i < 10; i++) await pub.publish(subject, enc(`m${i}`), { msgId: `m${i}` });
    const limits = { retention: 'interest', discard: 'old', maxMsgs: 10, maxBytes: -1, maxAgeMs: 0 } as const;
    const before = (await sampleStream(jsm, eventStreamName(bus)))!;
    for (let i = 10; i < 35; i++) await pub.publish(subject, enc(`m${i}`), { msgId: `m${i}` });
    const after = (await sampleStream(jsm, eventStreamName(bus)))!;
    expect(headDrops(before, after, limits)).toEqual({ dropped: 25, reason: 'discardOld' });
  });

  it('maxAge: unconsumed events that age out are counted as dropped; consumed ones are not', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('maxAge: 1s\nduplicates: 1s\nretention: interest'));
    const consumer = await dependency(bus);
    const pub = new Publisher(conn);
    const subject = subjectFor(bus, 'es', 'ev');
    const limits = {
      retention: 'interest',
      discard: 'new',
      maxMsgs: -1,
      maxBytes: -1,
      maxAgeMs: 1000,
    } as const;
    // Consumed in time: no drop.
    await pub.publish(subject, enc('a'), { msgId: 'a' });
    const s0 = (await sampleStream(jsm, eventStreamName(bus)))!;
    const m = await consumer.next({ expires: 2000 });
    await m?.ackAck();
    const s1 = (await sampleStream(jsm, eventStreamName(bus)))!;
    expect(headDrops(s0, s1, limits).dropped).toBe(0);
    // Left to age out: three dropped.
    for (const id of ['b', 'c', 'd']) await pub.publish(subject, enc(id), { msgId: id });
    const s2 = (await sampleStream(jsm, eventStreamName(bus)))!;
    let s3 = s2;
    for (let i = 0; i < 50 && s3.messages > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s3 = (await sampleStream(jsm, eventStreamName(bus)))!;
    }
    expect(headDrops(s2, s3, limits)).toEqual({ dropped: 3, reason: 'maxAge' });
  });

  it('the controller watches each bus: drops are logged and counted in sluice_bus_events_dropped_total', async () => {
    const registry = newRegistry();
    const warnings: unknown[] = [];
    const log = { warn: (o: unknown) => warnings.push(o) } as unknown as Logger;
    const ops = busOperations({ registry, log, monitorEveryMs: 100 });
    const bus = newBus();
    const conn = { ...bus, url: natsUrl(), streamConfig: 'maxMsgs: 10\ndiscard: old', replicas: 1 };
    try {
      expect((await ops.ensureStreams(conn)).ok).toBe(true);
      await dependency(bus); // never consumes
      ops.monitor(conn);
      const pub = new Publisher(conn_());
      for (let i = 0; i < 10; i++)
        await pub.publish(subjectFor(bus, 'es', 'ev'), enc(`m${i}`), { msgId: `m${i}` });
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 10; i < 30; i++)
        await pub.publish(subjectFor(bus, 'es', 'ev'), enc(`m${i}`), { msgId: `m${i}` });
      const total = async () =>
        ((await registry.getSingleMetric('sluice_bus_events_dropped_total')?.get())?.values ?? []).reduce(
          (n, v) => n + v.value,
          0,
        );
      await expect.poll(total, { timeout: 5000 }).toBe(20);
      expect(warnings[0]).toMatchObject({ reason: 'discardOld' });
    } finally {
      await ops.close();
    }
  });

  it("the monitor also counts purges and deletions by hand (not the controller's own) and expired dead letters", async () => {
    const registry = newRegistry();
    const warnings: Array<{ reason: string; by?: string }> = [];
    const log = { warn: (o: { reason: string; by?: string }) => warnings.push(o) } as unknown as Logger;
    const ops = busOperations({ registry, log, monitorEveryMs: 100 });
    const bus = newBus();
    const c = { ...bus, url: natsUrl(), streamConfig: 'dlqMaxAge: 1s', replicas: 1 };
    const operator = await BusConnection.open({ url: natsUrl(), name: 'operator' });
    const itself = await BusConnection.open({ url: natsUrl(), name: 'sluice-controller' });
    const count = async (reason: string) =>
      ((await registry.getSingleMetric('sluice_bus_events_dropped_total')?.get())?.values ?? [])
        .filter((v) => v.labels.reason === reason)
        .reduce((n, v) => n + v.value, 0);
    try {
      expect((await ops.ensureStreams(c)).ok).toBe(true);
      await dependency(bus); // never consumes
      ops.monitor(c);
      const pub = new Publisher(conn_());
      for (let i = 0; i < 10; i++)
        await pub.publish(subjectFor(bus, 'es', 'ev'), enc(`m${i}`), { msgId: `m${i}` });
      await expect
        .poll(
          async () => (await sampleStream(await jetstreamManager(conn.nc), eventStreamName(bus)))?.messages,
        )
        .toBe(10);
      const jsm = await jetstreamManager(operator.nc);
      await jsm.streams.deleteMessage(eventStreamName(bus), 1);
      await jsm.streams.purge(eventStreamName(bus), { seq: 6 }); // removes 2..5
      await (await jetstreamManager(itself.nc)).streams.purge(eventStreamName(bus), { seq: 8 }); // 6, 7: not counted
      await expect.poll(() => count('deleted'), { timeout: 5000 }).toBe(1);
      await expect.poll(() => count('purged'), { timeout: 5000 }).toBe(4);
      expect(warnings.find((w) => w.reason === 'purged')?.by).toContain('operator');
      // Three dead letters left to expire.
      for (let i = 0; i < 3; i++)
        await pub.publish(dlqSubject(bus, 's', 't'), enc(`d${i}`), { msgId: `d${i}` });
      await expect.poll(() => count('dlqMaxAge'), { timeout: 10_000 }).toBe(3);
      expect(await count('purged')).toBe(4);
    } finally {
      await ops.close();
      await operator.close();
      await itself.close();
    }
  });

  it('maxMsgsPerSubject: a source whose Sensor is down fills only its own share; other sources keep being accepted', async () => {
    // Adversary break 5: with one maxMsgs budget, "other" (its Sensor down) took all of it and
    // "hooks" was refused although its Sensor was caught up. The per-event limit keeps them apart.
    const jsm = await jetstreamManager(conn.nc);
    for (const [perSubject, hooksAccepted] of [
      ['', false],
      ['\nmaxMsgsPerSubject: 20', true],
    ] as const) {
      const bus = newBus();
      await ensureStreams(jsm, bus, settings(`maxMsgs: 50${perSubject}`));
      for (const [sensor, eventSourceName, eventName] of [
        ['a', 'hooks', 'orders'],
        ['b', 'other', 'payments'],
      ] as const)
        await ensureDependencyConsumer(jsm, { bus, sensor, dependency: 'd', eventSourceName, eventName });
      const pub = new Publisher(conn);
      const results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          pub.publish(subjectFor(bus, 'other', 'payments'), enc(`o${i}`), { msgId: `o${i}` }),
        ),
      );
      const stored = results.filter((r) => r.status === 'fulfilled').length;
      for (const r of results)
        if (r.status === 'rejected') expect((r.reason as BusError).code).toBe('StreamFull');
      const hooks = await pub.publish(subjectFor(bus, 'hooks', 'orders'), enc('h'), { msgId: 'h' }).then(
        () => 'accepted',
        (e: BusError) => e.code,
      );
      expect(stored).toBe(perSubject ? 20 : 50);
      expect(hooks).toBe(hooksAccepted ? 'accepted' : 'StreamFull');
      process.stdout.write(
        `fairness${perSubject.replace('\n', ' ') || ' (one budget)'}: "other" stored ${stored}/60, "hooks" ${hooks}\n`,
      );
    }
  });

  it('keeps each Sensor its own copy: an event two Sensors want stays until both acked it', async () => {
    const jsm = await jetstreamManager(conn.nc);
    const bus = newBus();
    await ensureStreams(jsm, bus, settings('retention: interest'));
    const a = await dependency(bus, 'a');
    const b = await dependency(bus, 'b');
    await new Publisher(conn).publish(subjectFor(bus, 'es', 'ev'), enc('e'), { msgId: 'e' });
    await (await a.next({ expires: 2000 }))?.ackAck();
    expect((await jsm.streams.info(eventStreamName(bus))).state.messages).toBe(1);
    await (await b.next({ expires: 2000 }))?.ackAck();
    await expect.poll(async () => (await jsm.streams.info(eventStreamName(bus))).state.messages).toBe(0);
    expect(AckPolicy.Explicit).toBe('explicit');
  });
});
