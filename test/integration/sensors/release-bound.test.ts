// Adversary (issue 16): a handler gives its consume slot back (`release()`) once its trigger call
// succeeded, so only its done mark and ack wait for the bus. The promise: trigger calls stay bounded
// by the configured concurrency.
//
// An event that fires two triggers (one dependency, two triggers, as most Sensors with a fan-out
// have) passes one `release` to both calls. The fast trigger's success released the slot while the
// slow trigger's call still ran, so the consumer pulled the next message, whose fast call released
// again: slow calls piled up without bound (up to max_ack_pending and the 16 MiB byte budget), and
// a strict rateLimit or an open-ended slow sink no longer held pulling (buffering, not backpressure).
//
// Real nats-server, the real Sensor runtime, an HTTP sink that holds the slow path's requests.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { newBus, runSensor, type TestBus, until } from './fixtures.ts';

/** A sink whose `/slow` requests are held `holdMs`; counts in-flight requests per path. */
async function holdingSink(holdMs: number) {
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  const done = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    req.resume();
    req.on('end', () => {
      const n = (inFlight.get(path) ?? 0) + 1;
      inFlight.set(path, n);
      peak.set(path, Math.max(peak.get(path) ?? 0, n));
      const answer = () => {
        inFlight.set(path, inFlight.get(path)! - 1);
        done.set(path, (done.get(path) ?? 0) + 1);
        res.writeHead(200).end('ok');
      };
      if (path === '/slow') setTimeout(answer, holdMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    peak: (p: string) => peak.get(p) ?? 0,
    done: (p: string) => done.get(p) ?? 0,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const http = (name: string, url: string) => ({
  template: {
    name,
    http: { url, method: 'POST', payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }] },
  },
});

describe.skipIf(natsMissing())(`released slots and trigger concurrency${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  beforeAll(async () => {
    b = await newBus(natsUrl());
  });
  afterAll(async () => {
    await b?.conn.close();
  });

  it('an event firing a fast and a slow trigger keeps its slot until both calls are done', async () => {
    const concurrency = 2;
    const events = 12;
    const sink = await holdingSink(1500);
    const s = await runSensor(
      b,
      'fanout',
      {
        dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'fan' }],
        triggers: [http('fast', `${sink.url}/fast`), http('slow', `${sink.url}/slow`)],
      },
      { concurrency },
    );
    try {
      for (let i = 0; i < events; i++) await b.emit('hooks', 'fan', { n: i });
      // Every fast call is made before the slow ones finish when the slot is released too early.
      await until('all slow calls', () => sink.done('/slow') === events, 60_000);
      console.log(
        `release-bound: concurrency ${concurrency}, peak in-flight slow calls ${sink.peak('/slow')}, fast ${sink.peak('/fast')}`,
      );
      expect(sink.done('/fast')).toBe(events);
      // One slow call per event in hand: never more than the handlers allowed at once.
      expect(sink.peak('/slow')).toBeLessThanOrEqual(concurrency);
    } finally {
      await s.stop();
      await sink.close();
    }
  });
});
