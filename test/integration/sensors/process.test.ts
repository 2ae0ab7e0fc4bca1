// `sluice sensor` as a real process, run from the container spec the controller generates:
// SIGKILLed while trigger calls are in flight and started again, every event ends delivered (or
// dead-lettered), and the idempotent sink sees each idempotency key's effect once.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { startSluice } from '../../harness/sluice-process.ts';
import { newBus, sensorProcess, startSink } from './fixtures.ts';

describe.skipIf(natsMissing())(`sluice sensor process${skipNote(natsMissing())}`, () => {
  it('SIGKILL mid-trigger and restart: every event delivered, no duplicate effect', async () => {
    const b = await newBus(natsUrl());
    // An idempotent sink: records each idempotency key as one effect.
    const effects = new Set<string>();
    const sink = await startSink((r) => {
      effects.add(r.key);
      return 200;
    });
    const obj = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Sensor' as const,
      metadata: { name: 'crashy', namespace: b.bus.namespace, uid: 'u1' },
      spec: {
        dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'crash' }],
        triggers: [
          {
            template: {
              name: 'call',
              http: {
                url: `${sink.url}/effect`,
                payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }],
              },
            },
            // 20/s: the 60 events take ~3 s, so the kill lands mid-stream
            rateLimit: { unit: 'Second', requestsPerUnit: 20 },
          },
        ],
      },
    };
    const { args, env: runEnv } = sensorProcess(obj, natsUrl());

    let p = await startSluice(args, runEnv);
    try {
      const total = 60;
      for (let i = 0; i < total; i++) await b.emit('hooks', 'crash', { n: i });
      await waitFor('some deliveries', () => sink.requests.length >= 15, { timeoutMs: 20_000 });
      await p.proc.kill();
      const before = sink.requests.length;
      expect(before).toBeLessThan(total);
      p = await startSluice(args, runEnv);
      await waitFor('every event delivered', () => effects.size === total, { timeoutMs: 30_000 });
      // settle: nothing more arrives, nothing dead-lettered
      await new Promise((r) => setTimeout(r, 2500));
      expect(effects.size).toBe(total);
      expect(new Set(sink.requests.map((r) => (r.body as { n: number }).n)).size).toBe(total);
      expect((await b.deadLetters()).filter((x) => x.sensor === 'crashy')).toHaveLength(0);
      // Raw requests may exceed the effects only by calls that were in flight at the kill.
      const repeats = sink.requests.length - effects.size;
      expect(repeats).toBeLessThanOrEqual(20);
      process.stdout.write(
        `sensor crash test: ${total} events, ${sink.requests.length} requests, ${effects.size} distinct keys, ${repeats} repeated calls (made before the kill, idempotency key unchanged)\n`,
      );
    } finally {
      await p.proc.stop();
      await sink.close();
      await b.conn.close();
    }
  }, 90_000);
});
