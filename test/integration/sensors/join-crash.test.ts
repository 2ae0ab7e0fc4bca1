// The AND join of `sluice sensor` as a real process, SIGKILLed while firings are in flight and
// partial matches are held in memory (written behind to KV), then started again: every message
// ends acked, no event is used by two firings, and nothing is dead-lettered.
import { describe, expect, it } from 'vitest';
import { consumerName, eventStreamName } from '../../../src/bus/subjects.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { startSluice } from '../../harness/sluice-process.ts';
import { pairSpec } from './adv/fixtures.ts';
import { newBus, sensorProcess, startSink } from './fixtures.ts';

describe.skipIf(natsMissing())(`sluice sensor AND join, killed${skipNote(natsMissing())}`, () => {
  it('SIGKILL with partial matches in memory: all acked after restart, no event in two firings', async () => {
    const b = await newBus(natsUrl());
    const sink = await startSink();
    const pair = pairSpec(`${sink.url}/pair`);
    const obj = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Sensor' as const,
      metadata: { name: 'joiner', namespace: b.bus.namespace, uid: 'u2' },
      spec: {
        ...pair,
        // The pairs take seconds to fire, so the kill lands while some are in flight.
        triggers: pair.triggers.map((t) => ({ ...t, rateLimit: { unit: 'Second', requestsPerUnit: 20 } })),
      },
    };
    const { args, env: runEnv } = sensorProcess(obj, natsUrl());
    const stream = eventStreamName(b.bus);
    const settled = async () => {
      for (const dep of ['a', 'b']) {
        const ci = await b.jsm.consumers.info(stream, consumerName('joiner', dep));
        if (ci.num_pending > 0 || ci.num_ack_pending > 0) return false;
      }
      return true;
    };

    let p = await startSluice(args, runEnv);
    try {
      const pairs = 60;
      for (let i = 0; i < pairs; i++) {
        await b.emit('hooks', 'left', { i }, `a-${i}`);
        await b.emit('hooks', 'right', { i }, `b-${i}`);
      }
      await waitFor('some firings', () => sink.requests.length >= 10, { timeoutMs: 20_000 });
      await p.proc.kill();
      const before = sink.requests.length;
      p = await startSluice(args, runEnv);
      await waitFor('every message acked', settled, { timeoutMs: 40_000 });
      await new Promise((r) => setTimeout(r, 1500));
      expect(await settled()).toBe(true);
      expect(sink.requests.length).toBeGreaterThan(before);
      // Each event is used by at most one firing (one idempotency key); a key may repeat only
      // for a call that was in flight at the kill.
      const keyOf = new Map<string, string>();
      for (const r of sink.requests) {
        const body = r.body as { a: string; b: string };
        for (const id of [body.a, body.b]) {
          const k = keyOf.get(id);
          expect(k === undefined || k === r.key, `${id} in two firings`).toBe(true);
          keyOf.set(id, r.key);
        }
      }
      const keys = new Set(sink.requests.map((r) => r.key));
      expect((await b.deadLetters()).filter((x) => x.sensor === 'joiner')).toHaveLength(0);
      process.stdout.write(
        `join crash test: ${pairs} pairs, ${keys.size} firings (${before} calls before the kill), ${sink.requests.length - keys.size} repeated calls\n`,
      );
    } finally {
      await p.proc.stop();
      await sink.close();
      await b.conn.close();
    }
  }, 120_000);
});
