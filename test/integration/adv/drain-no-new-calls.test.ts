// Adversarial: a stopping Sensor starts no new trigger call. stop() lets the calls under way finish,
// but messages already in hand and not yet calling must not call after it: those pulled into the
// client's buffer while every handler slot was busy, and those queued behind a call of the same
// orderingKey. Before the fix both called the receiver during the drain (one new call per freed
// slot / per queued message), after SIGTERM, each a call the next process would find done only
// if it finished within the drain time.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { newBus, runSensor, until } from '../sensors/fixtures.ts';

/** A receiver that holds every request until `release()`, then answers 200 (and at once after). */
async function gatedSink() {
  const bodies: Array<{ n: unknown }> = [];
  const held: Array<() => void> = [];
  let open = false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { n: unknown });
      const answer = () => res.writeHead(200).end('ok');
      if (open) answer();
      else held.push(answer);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/effect`,
    bodies,
    release() {
      open = true;
      for (const f of held.splice(0)) f();
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const spec = (url: string, orderingKey?: string) => ({
  dependencies: [
    { name: 'order', eventSourceName: 'hooks', eventName: 'drain', ...(orderingKey ? { orderingKey } : {}) },
  ],
  triggers: [
    {
      template: {
        name: 'call',
        http: { url, timeout: 30, payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }] },
      },
    },
  ],
});

describe.skipIf(natsMissing())(`a stopping Sensor starts no new call${skipNote(natsMissing())}`, () => {
  it('messages buffered while every handler slot is busy are not handled after stop()', async () => {
    const b = await newBus(natsUrl());
    const sink = await gatedSink();
    const s = await runSensor(b, 'slots', spec(sink.url), { concurrency: 2, fastPath: false });
    try {
      for (let n = 0; n < 6; n++) await b.emit('hooks', 'drain', { n });
      await until('both slots calling', () => sink.bodies.length === 2);
      // Give the client time to buffer the other four (one pull of up to 256).
      await new Promise((r) => setTimeout(r, 300));
      const stopping = s.stop();
      sink.release();
      await stopping;
      // The two calls under way finished; none of the four waiting messages called.
      expect(sink.bodies.map((x) => String(x.n)).sort()).toEqual(['0', '1']);
    } finally {
      await sink.close();
      await b.conn.close();
    }
  }, 40_000);

  it('messages queued behind a call of the same orderingKey do not call after stop()', async () => {
    const b = await newBus(natsUrl());
    const sink = await gatedSink();
    const s = await runSensor(b, 'ordered', spec(sink.url, 'k'), { fastPath: false });
    try {
      for (let n = 0; n < 3; n++) await b.emit('hooks', 'drain', { k: 'same', n });
      await until('the first call at the receiver', () => sink.bodies.length === 1);
      await new Promise((r) => setTimeout(r, 300));
      const stopping = s.stop();
      sink.release();
      await stopping;
      expect(sink.bodies.map((x) => String(x.n))).toEqual(['0']);
    } finally {
      await sink.close();
      await b.conn.close();
    }
  }, 40_000);
});
