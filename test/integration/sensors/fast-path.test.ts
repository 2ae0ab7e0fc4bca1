// The claim-free fast path of a Sensor (issue 16 item 1) on a real nats-server: first deliveries of
// new keys skip the processed-set claim (one KV write per event instead of two), and every way the
// same effect could come again still finds its key: the same event published again after it was
// done, a done mark written by another connection (as `sluice dlq replay` does) before the same key
// is first-delivered, a duplicate arriving while the first call still runs, keys written before a
// restart (the index rebuilds from the bucket), and a slow call, whose claim is written late.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvKey } from '../../../src/bus/kv.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { provisionSensorState, sensorBuckets } from '../../../src/bus/sensor-state.ts';
import { eventSubject } from '../../../src/bus/subjects.ts';
import { encodeEvent } from '../../../src/eventsources/envelope.ts';
import { idempotencyKey } from '../../../src/sensors/settle.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { metric, newBus, runSensor, startSink, type TestBus, until } from './fixtures.ts';

const dep = (event: string) => ({ name: 'order', eventSourceName: 'hooks', eventName: event });
const spec = (event: string, url: string) => ({
  dependencies: [dep(event)],
  triggers: [{ template: { name: 'call', http: { url, method: 'POST' } }, retryStrategy: { steps: 1 } }],
});

/** An HTTP receiver that records idempotency keys and answers nothing until release(). */
async function heldReceiver() {
  let release: () => void = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  const keys: string[] = [];
  const server = createServer((req, res) => {
    keys.push(String(req.headers['idempotency-key']));
    void held.then(() => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    keys,
    release: () => release(),
    close() {
      release();
      server.closeAllConnections();
      server.close();
    },
  };
}

describe.skipIf(natsMissing())(
  `Sensor fast path (no claim on a first delivery)${skipNote(natsMissing())}`,
  () => {
    let b: TestBus;
    beforeAll(async () => {
      b = await newBus(natsUrl());
    });
    afterAll(async () => {
      await b?.conn.close();
    });

    /** Writes (stream sequence) made to Sensor `name`'s processed bucket so far. */
    const kvWrites = async (name: string) =>
      (await b.jsm.streams.info(`KV_${sensorBuckets(b.bus.namespace, name).processed}`)).state.last_seq;
    const claims = (s: Awaited<ReturnType<typeof runSensor>>, path: string) =>
      metric(s.registry, 'sluice_sensor_claims_total', { path });
    const ready = (s: Awaited<ReturnType<typeof runSensor>>) =>
      until(
        'done-key index ready',
        async () => (await metric(s.registry, 'sluice_sensor_done_index_ready')) === 1,
      );
    /** Publishes `ev` again under another Nats-Msg-Id, so the stream keeps it (past the duplicates window). */
    const republish = (event: string, ev: Awaited<ReturnType<TestBus['emit']>>, msgId: string) =>
      new Publisher(b.conn.nc).publish(eventSubject(b.bus, 'hooks', event), encodeEvent(ev), { msgId });

    it('first deliveries skip the claim: one KV write per event instead of two', async () => {
      const sink = await startSink();
      const n = 40;
      const counts: Record<string, number> = {};
      for (const [name, fastPath] of [
        ['fp-on', true],
        ['fp-off', false],
      ] as const) {
        const s = await runSensor(b, name, spec(`fp1-${name}`, `${sink.url}/${name}`), { fastPath });
        try {
          if (fastPath) await ready(s);
          for (let i = 0; i < n; i++) await b.emit('hooks', `fp1-${name}`, { i });
          await until(`${name}: ${n} calls`, () => sink.on(`/${name}`).length === n);
          await until(`${name}: done marks`, async () => (await kvWrites(name)) >= (fastPath ? n : 2 * n));
          counts[name] = await kvWrites(name);
          if (fastPath) {
            expect(await claims(s, 'skipped')).toBe(n);
            expect(await claims(s, 'claimed')).toBe(0);
          } else expect(await claims(s, 'claimed')).toBe(n);
        } finally {
          await s.stop();
        }
      }
      process.stdout.write(`processed-set writes for ${n} events: ${JSON.stringify(counts)}\n`);
      expect(counts['fp-on']).toBe(n);
      expect(counts['fp-off']).toBe(2 * n);
      expect(new Set(sink.on().map((r) => r.key)).size).toBe(2 * n);
      await sink.close();
    });

    it('the same event published again after it was done has no second effect', async () => {
      const sink = await startSink();
      const s = await runSensor(b, 'fp-again', spec('fp2', `${sink.url}/x`));
      try {
        await ready(s);
        const ev = await b.emit('hooks', 'fp2', { n: 1 });
        await until('first call', () => sink.on().length === 1);
        await until('acked', async () => (await kvWrites('fp-again')) >= 1);
        await republish('fp2', ev, 'again-1');
        await until(
          'duplicate skipped',
          async () => (await metric(s.registry, 'sluice_sensor_duplicates_skipped_total')) === 1,
        );
        expect(sink.on()).toHaveLength(1);
        expect(await claims(s, 'skipped')).toBe(1);
        expect(await claims(s, 'claimed')).toBe(1);
      } finally {
        await s.stop();
        await sink.close();
      }
    });

    it('a duplicate delivered while the first call runs waits for it, then is skipped', async () => {
      const receiver = await heldReceiver();
      const keys = receiver.keys;
      const s = await runSensor(b, 'fp-concurrent', spec('fp3', receiver.url));
      try {
        await ready(s);
        const ev = await b.emit('hooks', 'fp3', { n: 1 });
        await until('first call under way', () => keys.length === 1);
        await republish('fp3', ev, 'concurrent-1');
        await until(
          'duplicate handed back',
          async () => (await metric(s.registry, 'sluice_sensor_events_total', { result: 'matched' })) === 2,
        );
        receiver.release();
        await until(
          'duplicate skipped',
          async () => (await metric(s.registry, 'sluice_sensor_duplicates_skipped_total')) === 1,
          10_000,
        );
        expect(keys).toHaveLength(1);
      } finally {
        receiver.release();
        await s.stop();
        receiver.close();
      }
    });

    it('a done mark written by another connection (a replay) is seen before the same key is first-delivered', async () => {
      const sink = await startSink();
      const s = await runSensor(b, 'fp-replayed', spec('fp4', `${sink.url}/x`));
      try {
        await ready(s);
        // The event the replay handled: its key is marked done by another connection.
        const id = 'replayed-1';
        const key = idempotencyKey(b.bus.namespace, 'fp-replayed', 'call', {
          order: { id, source: 'hooks', subject: 'fp4' } as never,
        });
        const other = await (await import('../../../src/bus/connection.ts')).BusConnection.open({
          url: natsUrl(),
        });
        try {
          const kv = await new Kvm(other.nc).open(sensorBuckets(b.bus.namespace, 'fp-replayed').processed);
          await kv.put(kvKey(key), 'replayed');
        } finally {
          await other.close();
        }
        await until('the follower saw the replay', () => s.doneIndex.mightHave(kvKey(key)));
        await b.emit('hooks', 'fp4', { n: 1 }, id);
        await until(
          'duplicate skipped',
          async () => (await metric(s.registry, 'sluice_sensor_duplicates_skipped_total')) === 1,
        );
        expect(sink.on()).toHaveLength(0);
        expect(await claims(s, 'skipped')).toBe(0);
      } finally {
        await s.stop();
        await sink.close();
      }
    });

    it('a slow call writes its claim at the first heartbeat, so a redelivery would find it', async () => {
      const receiver = await heldReceiver();
      // ack wait 3 s: the heartbeat (and the late claim) comes after 1 s.
      const s = await runSensor(b, 'fp-slow', spec('fp5', receiver.url), { ackWaitMs: 3000 });
      try {
        await ready(s);
        const ev = await b.emit('hooks', 'fp5', { n: 1 });
        const key = idempotencyKey(b.bus.namespace, 'fp-slow', 'call', { order: ev });
        const kv = await new Kvm(b.conn.nc).open(sensorBuckets(b.bus.namespace, 'fp-slow').processed);
        const pending = await until('late claim written', async () => {
          const e = await kv.get(kvKey(key));
          return e?.operation === 'PUT' && e.string().startsWith('pending:') ? e.string() : undefined;
        });
        expect(pending).toMatch(/^pending:/);
        expect(await claims(s, 'late')).toBe(1);
        receiver.release();
        // The done mark (the call's detail) replaces the claim.
        await until('done', async () => {
          const e = await kv.get(kvKey(key));
          return e?.operation === 'PUT' && !e.string().startsWith('pending:');
        });
      } finally {
        receiver.release();
        await s.stop();
        receiver.close();
      }
    });

    it('restart: the index rebuilds from 20,000 keys, reports ready, and keeps done keys done', async () => {
      const name = 'fp-rebuild';
      await provisionSensorState(b.jsm, b.conn.nc, { bus: b.bus, sensor: name, dependencies: [dep('fp6')] });
      const bucket = sensorBuckets(b.bus.namespace, name).processed;
      const done = { id: 'done-before', source: 'hooks', subject: 'fp6' } as never;
      const doneKey = idempotencyKey(b.bus.namespace, name, 'call', { order: done });
      const js = jetstream(b.conn.nc);
      const total = 20_000;
      for (let i = 0; i < total; i += 1000) {
        await Promise.all(
          Array.from({ length: Math.min(1000, total - i) }, (_, j) =>
            js.publish(`$KV.${bucket}.${i + j === 7777 ? doneKey : `k${i + j}`}`, 'done'),
          ),
        );
      }
      const sink = await startSink();
      const t0 = performance.now();
      const s = await runSensor(b, name, spec('fp6', `${sink.url}/x`));
      try {
        await ready(s);
        process.stdout.write(
          `done-key index rebuilt from ${total} keys in ${Math.round(performance.now() - t0)} ms (start included)\n`,
        );
        expect(s.doneIndex.mightHave(kvKey(doneKey))).toBe(true);
        await b.emit('hooks', 'fp6', { n: 0 }, 'done-before');
        await b.emit('hooks', 'fp6', { n: 1 }, 'fresh-1');
        await until('fresh delivered', () => sink.on().length === 1);
        await until(
          'done one skipped',
          async () => (await metric(s.registry, 'sluice_sensor_duplicates_skipped_total')) === 1,
        );
        expect(sink.on()).toHaveLength(1);
        expect(await claims(s, 'skipped')).toBe(1);
      } finally {
        await s.stop();
        await sink.close();
      }
    });
  },
);
