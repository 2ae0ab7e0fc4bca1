// Adversary (AND joins, maxDeliveries): the event that completed a join is dead-lettered
// `max-deliveries` (it came back more often than the Sensor handles: here a stop cut its firing's
// retry wait, and the next process got delivery 2 of maxDeliveries 1) while its firing is still in
// flight in the partial match. Its partner was acked long before, when it started waiting.
// Before, nothing ever settled that firing: it stayed in the stored partial match for good, a-1
// (in no dead-letter record) with it, and a-1 published again ran the firing of the dead-lettered
// b-1 (a second call). Now the firing is dead-lettered with both events and settled first
// (fire.ts abandonFirings, called from receive.ts before a max-deliveries dead letter).
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvKey } from '../../../../src/bus/kv.ts';
import { Publisher } from '../../../../src/bus/publisher.ts';
import { sensorBuckets } from '../../../../src/bus/sensor-state.ts';
import { eventSubject } from '../../../../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../../../../src/eventsources/envelope.ts';
import type { PartialMatch } from '../../../../src/sensors/join.ts';
import { natsMissing, natsUrl, skipNote } from '../../../harness/shared.ts';
import { newBus, runSensor, startSink, type TestBus, until } from '../fixtures.ts';
import { pairSpec, settled as settledOf } from './fixtures.ts';

describe.skipIf(natsMissing())(
  `AND join: max-deliveries with a firing in flight${skipNote(natsMissing())}`,
  () => {
    let b: TestBus;
    let sink: Awaited<ReturnType<typeof startSink>>;
    beforeAll(async () => {
      b = await newBus(natsUrl());
      // The first call of each path fails.
      sink = await startSink((r) => (sink.on(r.path).length === 1 ? 503 : 200));
    });
    afterAll(async () => {
      await sink.close();
      await b.conn.close();
    });
    const settled = () => settledOf(b, 'mdl');
    const spec = (path = '/pair') => {
      const base = pairSpec(`${sink.url}${path}`);
      return {
        ...base,
        maxDeliveries: 1,
        triggers: base.triggers.map((t) => ({ ...t, retryStrategy: { steps: 2, duration: '20s' } })),
      };
    };

    const inflight = async () => {
      const kv = await new Kvm(b.conn.nc).open(sensorBuckets(b.bus.namespace, 'mdl').conditions);
      const e = await kv.get(kvKey('pair'));
      return Object.keys((e?.json<PartialMatch>() ?? { events: {} }).inflight ?? {});
    };

    it('the firing leaves "in flight" with it, and the partner published again does not run it', async () => {
      let s = await runSensor(b, 'mdl', spec(), { deliver: 'all', drainMs: 100, ackWaitMs: 2000 });
      try {
        await b.emit('hooks', 'left', {}, 'a-1');
        await until('a recorded', settled, 10_000);
        await b.emit('hooks', 'right', {}, 'b-1');
        // The first call fails; the retry waits 20 s, and the stop cuts that wait.
        await until('first call', () => sink.on('/pair').length === 1, 10_000);
        expect(await inflight()).toHaveLength(1);
      } finally {
        await s.stop();
      }
      s = await runSensor(b, 'mdl', spec(), { deliver: 'all', ackWaitMs: 2000 });
      try {
        await until('b dead-lettered', async () => (await b.deadLetters()).length === 2, 15_000);
        await until('settled', settled, 10_000);
        // The firing is dead-lettered with both its events (a-1 is named), then the event itself.
        const records = (await b.deadLetters()).map((r) => ({
          kind: r.kind,
          reason: r.reason,
          ids: Object.values(r.events as Record<string, { id: string }>)
            .map((e) => e.id)
            .sort(),
        }));
        expect(records).toEqual([
          { kind: 'trigger', reason: 'max-deliveries', ids: ['a-1', 'b-1'] },
          { kind: 'event', reason: 'max-deliveries', ids: ['b-1'] },
        ]);
        // The firing does not stay in flight for good...
        await until('firing gone', async () => (await inflight()).length === 0, 5_000);
        // ...and a-1 published again does not run the firing of a dead-lettered event.
        const again = envelope({ id: 'a-1', source: 'hooks', type: 'webhook', subject: 'left', data: {} });
        await new Publisher(b.conn.nc).publish(eventSubject(b.bus, 'hooks', 'left'), encodeEvent(again), {
          msgId: 'hooks/left/a-1/again',
        });
        await until('settled again', settled, 10_000);
        expect(sink.on('/pair')).toHaveLength(1);
      } finally {
        await s.stop();
      }
    }, 60_000);

    it('a firing whose call is recorded done (a crash before it left "in flight") is settled without a dead letter', async () => {
      const name = 'mdl2';
      const settled2 = () => settledOf(b, name);
      const bucket = async (which: 'processed' | 'conditions') =>
        new Kvm(b.conn.nc).open(sensorBuckets(b.bus.namespace, name)[which]);
      const before = (await b.deadLetters()).length;
      let s = await runSensor(b, name, spec('/pair2'), { deliver: 'all', drainMs: 100, ackWaitMs: 2000 });
      let key: string;
      try {
        await b.emit('hooks', 'left', {}, 'a-2');
        await until('a recorded', settled2, 10_000);
        await b.emit('hooks', 'right', {}, 'b-2');
        await until('first call', () => sink.on('/pair2').length === 1, 10_000);
        const e = await (await bucket('conditions')).get(kvKey('pair'));
        const keys = Object.keys(e?.json<PartialMatch>().inflight ?? {});
        expect(keys).toHaveLength(1);
        key = keys[0]!;
      } finally {
        await s.stop();
      }
      // As if the call's retry had succeeded and its done mark been stored, then the process died.
      await (await bucket('processed')).put(kvKey(key), 'done');
      s = await runSensor(b, name, spec('/pair2'), { deliver: 'all', ackWaitMs: 2000 });
      try {
        await until('b dead-lettered', async () => (await b.deadLetters()).length === before + 1, 15_000);
        await until('settled', settled2, 10_000);
        const fresh = (await b.deadLetters()).slice(before);
        // Only the event's own record: the firing ran, so it is not reported as failed.
        expect(fresh.map((r) => [r.kind, r.reason])).toEqual([['event', 'max-deliveries']]);
        const e = await (await bucket('conditions')).get(kvKey('pair'));
        expect(Object.keys(e?.json<PartialMatch>().inflight ?? {})).toHaveLength(0);
        expect(sink.on('/pair2')).toHaveLength(1);
      } finally {
        await s.stop();
      }
    }, 60_000);
  },
);
