// Events near the bus's largest message (adversary, issue 15, break 3): a record made from them (a
// dead letter carrying the event, a join's partial match carrying two) can be larger than the
// server takes. Before, such a record could never be stored, so the message came back forever and
// its failing trigger was called again on every delivery, and a join of two such events never
// ended. Now a dead letter is fitted (the event's data left out and named) and a join that cannot
// be stored dead-letters the event (too-large): every message ends after one delivery.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventStreamName } from '../../../src/bus/subjects.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { newBus, runSensor, startSink, type TestBus, until } from './fixtures.ts';

const dep = (name: string) => ({ name, eventSourceName: 'hooks', eventName: name });

describe.skipIf(natsMissing())(`events near the bus's message limit${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    b = await newBus(natsUrl());
    sink = await startSink((r) => (r.path === '/deny' ? 400 : 200));
  });
  afterAll(async () => {
    await sink.close();
    await b.conn.close();
  });

  const trigger = (name: string, path: string, conditions: string, depName: string) => ({
    template: {
      name,
      conditions,
      http: {
        url: `${sink.url}${path}`,
        payload: [{ src: { dependencyName: depName, dataKey: 'id' }, dest: 'id' }],
      },
    },
  });
  const records = async (sensor: string) => (await b.deadLetters()).filter((r) => r.sensor === sensor);
  const settled = async () => {
    const consumers = await b.jsm.consumers.list(eventStreamName(b.bus)).next();
    return consumers.every((c) => c.num_ack_pending === 0 && c.num_pending === 0);
  };
  const maxPayload = () => b.conn.nc.info!.max_payload;

  it('a failed trigger on an event too large to dead-letter whole: dead-lettered once without its data, fired once', async () => {
    const spec = { dependencies: [dep('big')], triggers: [trigger('big-deny', '/deny', 'big', 'big')] };
    const s = await runSensor(b, 'bigdl', spec, { deliver: 'all' });
    try {
      // The event itself fits (the webhook takes bodies up to 1 MiB); the record around it does not.
      const ev = await b.emit('hooks', 'big', { id: 'huge', pad: 'x'.repeat(maxPayload() - 2000) });
      await until('dead-lettered', async () => (await records('bigdl')).length === 1, 20_000);
      await until('nothing pending', settled, 20_000);
      const [r] = await records('bigdl');
      const big = (r!.events as Record<string, Record<string, unknown>>).big!;
      expect({ kind: r!.kind, reason: r!.reason, truncated: r!.truncated }).toEqual({
        kind: 'trigger',
        reason: 'trigger-failed',
        truncated: ['big'],
      });
      expect({ id: big.id, source: big.source, subject: big.subject }).toEqual({
        id: ev.id,
        source: 'hooks',
        subject: 'big',
      });
      const marker = (big.data as { 'sluice.truncated': { bytes: number } })['sluice.truncated'];
      expect(marker.bytes).toBeGreaterThan(maxPayload() - 2000);
      expect(sink.on('/deny')).toHaveLength(1);
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('a join whose partial match would not fit dead-letters the second event for that trigger (join-too-large) once; the first stays', async () => {
    const spec = {
      dependencies: [dep('o'), dep('p')],
      triggers: [trigger('both', '/both', 'o && p', 'o')],
    };
    const s = await runSensor(b, 'bigjoin', spec, { deliver: 'all' });
    try {
      const half = Math.floor(maxPayload() * 0.6);
      await b.emit('hooks', 'o', { id: 'o1', pad: 'o'.repeat(half) });
      // o and p have a consumer each: p goes out only once o is recorded, so o is the first.
      await until('o recorded', settled, 20_000);
      await b.emit('hooks', 'p', { id: 'p1', pad: 'p'.repeat(half) });
      await until('dead-lettered', async () => (await records('bigjoin')).length === 1, 20_000);
      await until('nothing pending', settled, 20_000);
      const [r] = await records('bigjoin');
      expect(r).toMatchObject({ kind: 'trigger', trigger: 'both', reason: 'join-too-large' });
      expect((r!.events as Record<string, { data: { id: string } }>).p!.data.id).toBe('p1');
      expect(sink.on('/both')).toHaveLength(0);
      // A small partner still completes the join with the first event.
      await b.emit('hooks', 'p', { id: 'p2' });
      await until('fired', () => sink.on('/both').length === 1, 20_000);
      expect(sink.on('/both')[0]!.body).toEqual({ id: 'o1' });
      expect(await records('bigjoin')).toHaveLength(1);
    } finally {
      await s.stop();
    }
  }, 60_000);
});
