// SIGTERM while trigger calls are under way (a slow receiver): the Sensor stops pulling, lets the
// calls finish, records their effects and acks, then exits 0. Before, the stop aborted the calls
// after the receiver had them, so the next process called again (the receiver acted twice unless
// it honoured the idempotency key). Also: a call still running when the drain time runs out is
// cut, so a receiver that never answers cannot hold SIGTERM up.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { startSluice } from '../../harness/sluice-process.ts';
import { newBus, sensorProcess } from './fixtures.ts';

/** A receiver that answers 200 `delayMs` after each request (never, with Infinity). */
async function slowSink(delayMs: number) {
  const requests: Array<{ key: string; n: number }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { n: number };
      requests.push({ key: String(req.headers['idempotency-key'] ?? ''), n: body.n });
      if (Number.isFinite(delayMs)) setTimeout(() => res.writeHead(200).end('ok'), delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/effect`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function sensorObject(namespace: string, url: string) {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Sensor' as const,
    metadata: { name: 'draining', namespace, uid: 'u-drain' },
    spec: {
      dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'drain' }],
      triggers: [
        {
          template: {
            name: 'call',
            http: {
              url,
              timeout: 60,
              payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }],
            },
          },
        },
      ],
    },
  };
}

describe.skipIf(natsMissing())(`Sensor stop drains calls under way${skipNote(natsMissing())}`, () => {
  it('SIGTERM during slow calls: each finishes, is recorded and acked; the next process calls nothing again', async () => {
    const b = await newBus(natsUrl());
    const sink = await slowSink(1500);
    const { args, env } = sensorProcess(sensorObject(b.bus.namespace, sink.url), natsUrl());
    let p = await startSluice(args, env);
    try {
      const total = 5;
      for (let n = 0; n < total; n++) await b.emit('hooks', 'drain', { n });
      // Every call is at the receiver, none answered yet.
      await waitFor('all calls at the receiver', () => sink.requests.length === total, { timeoutMs: 20_000 });
      const t0 = Date.now();
      await p.proc.stop(15_000);
      const stoppedMs = Date.now() - t0;
      expect(await p.proc.exited()).toBe(0);
      // The next process (after the claims' lease, the 2 s ack_wait, has run out) finds them done.
      p = await startSluice(args, env);
      await new Promise((r) => setTimeout(r, 5000));
      expect(sink.requests.length).toBe(total);
      expect(new Set(sink.requests.map((r) => r.key)).size).toBe(total);
      expect((await b.deadLetters()).filter((x) => x.sensor === 'draining')).toHaveLength(0);
      process.stdout.write(`drain: SIGTERM with ${total} calls under way, exited 0 after ${stoppedMs} ms\n`);
    } finally {
      await p.proc.stop();
      await sink.close();
      await b.conn.close();
    }
  }, 60_000);

  it('a receiver that never answers: the calls are cut when the drain time runs out, SIGTERM exits', async () => {
    const b = await newBus(natsUrl());
    const sink = await slowSink(Number.POSITIVE_INFINITY);
    const { args, env } = sensorProcess(sensorObject(b.bus.namespace, sink.url), natsUrl());
    const p = await startSluice(args, { ...env, SLUICE_SENSOR_DRAIN_MS: '1500' });
    try {
      await b.emit('hooks', 'drain', { n: 1 });
      await waitFor('the call at the receiver', () => sink.requests.length === 1, { timeoutMs: 20_000 });
      const t0 = Date.now();
      await p.proc.stop(15_000);
      const stoppedMs = Date.now() - t0;
      expect(await p.proc.exited()).toBe(0);
      expect(stoppedMs).toBeLessThan(10_000);
      // Nothing was dead-lettered: the event waits, un-acked, for the next process.
      expect((await b.deadLetters()).filter((x) => x.sensor === 'draining')).toHaveLength(0);
    } finally {
      await p.proc.stop();
      await sink.close();
      await b.conn.close();
    }
  }, 60_000);
});
