// Adversary (AND joins, size check): a trigger parameter with useRawData inserts a JSON value of
// the event into the trigger's payload, and a later parameter whose dest reaches inside it wrote
// into the event itself (the value was the event's own object, not a copy). The event is shared:
// other triggers of the same event, the trigger's own retries, and the partial match that holds it
// (whose remembered size, join.ts stateBytes, assumes events are never changed) all saw the change.
// So another trigger's payload carried this one's fields, a retry's `append` grew at every attempt
// under the same idempotency key, and a join holding the event under-counted its size: the firing
// write was over the server's limit and the innocent partner was dead-lettered `too-large`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsMissing, natsUrl, skipNote } from '../../../harness/shared.ts';
import { newBus, runSensor, startSink, type TestBus, until } from '../fixtures.ts';
import { settled as settledOf } from './fixtures.ts';

const deps = [
  { name: 'a', eventSourceName: 'hooks', eventName: 'left' },
  { name: 'c', eventSourceName: 'hooks', eventName: 'right' },
];
const raw = { src: { dependencyName: 'a', dataKey: 'obj', useRawData: true }, dest: 'obj' };

describe.skipIf(natsMissing())(`useRawData values are copies${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    b = await newBus(natsUrl());
    // The padding trigger fails twice per event before it succeeds (its retries re-render).
    let pads = 0;
    sink = await startSink((r) => (r.path === '/pad' && ++pads % 3 !== 0 ? 503 : 200));
  });
  afterAll(async () => {
    await sink.close();
    await b.conn.close();
  });
  const settled = (sensor: string) => settledOf(b, sensor);

  const spec = (pad: string) => ({
    dependencies: deps,
    triggers: [
      {
        template: {
          name: 'pad',
          conditions: 'a',
          http: {
            url: `${sink.url}/pad`,
            payload: [
              raw,
              { src: { dependencyName: 'a', dataTemplate: pad }, dest: 'obj.pad' },
              { src: { dependencyName: 'a', value: '+' }, dest: 'obj.note', operation: 'append' },
            ],
          },
        },
        retryStrategy: { steps: 3, duration: '10ms' },
      },
      {
        template: {
          name: 'pair',
          conditions: 'a && c',
          http: {
            url: `${sink.url}/pair`,
            payload: [raw, { src: { dependencyName: 'c', contextKey: 'id' }, dest: 'c' }],
          },
        },
      },
    ],
  });

  it("one trigger's parameters change neither another trigger's payload nor its own retries", async () => {
    const s = await runSensor(b, 'alias', spec('{{ "P" }}'), { deliver: 'all' });
    try {
      await b.emit('hooks', 'left', { obj: { k: 1, note: 'n' } }, 'a-1');
      await until('padded', () => sink.on('/pad').length === 3, 10_000);
      await until('a recorded', () => settled('alias'), 10_000);
      await b.emit('hooks', 'right', {}, 'c-1');
      await until('paired', () => sink.on('/pair').length === 1, 10_000);
      // Every attempt of the padding trigger sends the same body (one idempotency key).
      expect(sink.on('/pad').map((r) => r.body)).toEqual(
        Array(3).fill({ obj: { k: 1, note: 'n+', pad: 'P' } }),
      );
      expect(new Set(sink.on('/pad').map((r) => r.key)).size).toBe(1);
      // The join's trigger sees the event as it arrived.
      expect(sink.on('/pair')[0]!.body).toEqual({ obj: { k: 1, note: 'n' }, c: 'c-1' });
    } finally {
      await s.stop();
    }
  }, 40_000);

  it('a join holding an event another trigger padded to 1.2 MB still fires with its small partner', async () => {
    const before = sink.on('/pair').length;
    // Two 600 kB fields written into the event by the other trigger's parameters.
    const s = await runSensor(
      b,
      'aliasbig',
      {
        ...spec('{{ repeat 600000 "x" }}'),
        triggers: spec('').triggers.map((t, i) =>
          i === 0
            ? {
                ...t,
                template: {
                  ...t.template,
                  http: {
                    ...t.template.http,
                    payload: [
                      raw,
                      {
                        src: { dependencyName: 'a', dataTemplate: '{{ repeat 600000 "x" }}' },
                        dest: 'obj.p1',
                      },
                      {
                        src: { dependencyName: 'a', dataTemplate: '{{ repeat 600000 "y" }}' },
                        dest: 'obj.p2',
                      },
                    ],
                  },
                },
              }
            : t,
        ),
      },
      { deliver: 'all' },
    );
    try {
      await b.emit('hooks', 'left', { obj: { k: 2 } }, 'a-2');
      await until('a recorded', () => settled('aliasbig'), 10_000);
      await b.emit('hooks', 'right', {}, 'c-2');
      await until('settled', () => settled('aliasbig'), 15_000);
      await until('paired', () => sink.on('/pair').length === before + 1, 5_000);
      expect(sink.on('/pair').at(-1)!.body).toEqual({ obj: { k: 2 }, c: 'c-2' });
      expect((await b.deadLetters()).filter((r) => r.sensor === 'aliasbig').map((r) => r.reason)).toEqual([]);
    } finally {
      await s.stop();
    }
  }, 40_000);
});
