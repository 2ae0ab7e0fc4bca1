// Adversary (AND joins): an event id at the edge of what the decoder accepts must neither wedge a
// join nor cut the Sensor's connection. Before, the join's "used" mark was a KV key holding the id
// encoded (512 CJK characters: 4,608 key characters): every write or read of it was a protocol line
// over the server's max_control_line (4 KiB), the server closed the Sensor's whole connection each
// time, and the message came back for ~1,000 waits (the trigger was called, the firing never left
// "in flight"). kvKey now shortens long keys with a hash (src/bus/kv.ts MAX_KV_KEY).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsMissing, natsUrl, skipNote } from '../../../harness/shared.ts';
import { newBus, runSensor, startSink, type TestBus, until } from '../fixtures.ts';
import { pairSpec, settled as settledOf } from './fixtures.ts';

describe.skipIf(natsMissing())(`AND join: ids and names at the edges${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  let sink: Awaited<ReturnType<typeof startSink>>;
  beforeAll(async () => {
    b = await newBus(natsUrl());
    sink = await startSink();
  });
  afterAll(async () => {
    await sink.close();
    await b.conn.close();
  });
  const settled = () => settledOf(b, 'cjk');

  it('an event id of 512 CJK characters (the longest the decoder takes) joins and fires once', async () => {
    const spec = pairSpec(`${sink.url}/cjk`);
    const s = await runSensor(b, 'cjk', spec, { deliver: 'all' });
    try {
      const long = '中'.repeat(512);
      await b.emit('hooks', 'left', { n: 1 }, long);
      await until('a recorded', settled, 10_000);
      await b.emit('hooks', 'right', { n: 1 }, 'b-1');
      await until('fired', () => sink.on('/cjk').length === 1, 10_000);
      await until('settled', settled, 10_000);
      // The same event published again (new message id, same event id) does not fire again.
      await b.emit('hooks', 'left', { n: 1 }, long);
      await b.emit('hooks', 'right', { n: 2 }, 'b-2');
      await until('settled again', settled, 10_000);
      expect(sink.on('/cjk').map((r) => (r.body as { a: string }).a === long)).toEqual([true]);
      expect((await b.deadLetters()).filter((r) => r.sensor === 'cjk')).toEqual([]);
    } finally {
      await s.stop();
    }
  }, 40_000);
});
