// Adversary (issue 16): a wait (a bus outage under the event, an open circuit breaker, no free
// sandbox worker) hands the message back and must not count against maxDeliveries, across a restart
// too: receive.ts keeps the waits of each message in memory and writes the count to the
// processed-set bucket (`defers/<dependency>/<seq>`), read back when a message looks over its limit.
//
// The durable count was written from the in-memory tally alone. A restarted Sensor starts its tally
// at 0, so the first wait after the restart overwrote the stored count (say 8) with 1, and the next
// delivery was over the limit by the stored count too: an event that had only ever waited was
// dead-lettered `max-deliveries`, unhandled, while the trigger was still within its breaker's
// maxWait. A Sensor restarted (rolling update, node drain) during a long outage dead-letters every
// event that waited through it.
//
// Real nats-server, the real Sensor runtime twice (a restart), an HTTP sink that fails until healed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { metric, newBus, runSensor, startSink, type TestBus, until } from './fixtures.ts';

describe.skipIf(natsMissing())(`waits across a Sensor restart${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  beforeAll(async () => {
    b = await newBus(natsUrl());
  });
  afterAll(async () => {
    await b?.conn.close();
  });

  it('an event that only waited (breaker open) is never dead-lettered max-deliveries after a restart', async () => {
    let healthy = false;
    const sink = await startSink(() => (healthy ? 200 : 503));
    const spec = {
      maxDeliveries: 3,
      dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'wait' }],
      triggers: [
        {
          template: {
            name: 'call',
            http: {
              url: `${sink.url}/x`,
              payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }],
            },
          },
          retryStrategy: { steps: 2, duration: '20ms' },
          // Opens on the first failure; the message waits un-acked for up to 5 minutes.
          circuitBreaker: { consecutiveFailures: 1, openDuration: '200ms', maxWait: '5m' },
        },
      ],
    };
    const deferred = (s: { registry: Parameters<typeof metric>[0] }) =>
      metric(s.registry, 'sluice_sensor_messages_deferred_total');
    let s = await runSensor(b, 'defer-restart', spec);
    try {
      await b.emit('hooks', 'wait', { n: 1 });
      // Well past maxDeliveries of waits in the first process.
      await until('6 waits', async () => (await deferred(s)) >= 6, 30_000);
      await s.stop();
      s = await runSensor(b, 'defer-restart', spec);
      // A few more waits in the restarted process (the breaker opens again on its first probe).
      const records = async () => (await b.deadLetters()).filter((d) => d.sensor === 'defer-restart');
      await until(
        '3 more waits (or a dead letter)',
        async () => (await deferred(s)) >= 3 || (await records()).length > 0,
        30_000,
      );
      const early = await records();
      console.log(
        `defer-restart: dead letters before the sink healed: ${early.map((d) => d.reason).join(',') || 'none'}`,
      );
      expect(early, 'an event that only waited was dead-lettered').toHaveLength(0);
      healthy = true;
      await until(
        'delivered',
        async () => (await metric(s.registry, 'argo_events_action_triggered_total')) === 1,
        20_000,
      );
      expect(sink.on().filter((r) => r.status === 200)).toHaveLength(1);
      expect((await b.deadLetters()).filter((d) => d.sensor === 'defer-restart')).toHaveLength(0);
    } finally {
      await s.stop();
      await sink.close();
    }
  }, 90_000);
});
