// A Sensor with replicas: 2 on the real API server: only the Lease holder consumes; when it stops,
// the other takes over and every event is delivered once.
import { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { kubeConfig, kubeMissing, natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { metric, newBus, runSensor, startSink, until } from './fixtures.ts';

const skip = kubeMissing() ?? natsMissing();
describe.skipIf(skip)(`Sensor replicas${skipNote(skip)}`, () => {
  it('only the leader fires; hand-over on stop loses and repeats nothing', async () => {
    const b = await newBus(natsUrl());
    const ns = uniqueName('snlease');
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: ns } } });
    const sink = await startSink();
    const spec = {
      replicas: 2,
      dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: 'ha' }],
      triggers: [{ template: { name: 'call', http: { url: `${sink.url}/x` } } }],
    };
    const lease = {
      kubeConfig: () => kubeConfig(),
      leaseNamespace: ns,
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 500,
    };
    const a = await runSensor(b, 'ha', spec, { ...lease, identity: 'a' });
    const c = await runSensor(b, 'ha', spec, { ...lease, identity: 'c' });
    try {
      for (let i = 0; i < 20; i++) await b.emit('hooks', 'ha', { n: i });
      await until('first batch', () => sink.on().length === 20);
      // The sink counts a request when it arrives; the Sensor counts it once the answer is back.
      const fired = async () =>
        Promise.all([a, c].map((s) => metric(s.registry, 'argo_events_action_triggered_total')));
      await until('first batch counted', async () => (await fired()).reduce((x, y) => x + y, 0) === 20);
      const [firedA = 0, firedC = 0] = await fired();
      expect([firedA, firedC].sort((x, y) => x - y)).toEqual([0, 20]);
      const [leader, other] = firedA === 20 ? [a, c] : [c, a];
      await leader.stop();
      for (let i = 20; i < 40; i++) await b.emit('hooks', 'ha', { n: i });
      await until('second batch via the other replica', () => sink.on().length === 40, 20_000);
      await until(
        'second batch counted',
        async () => (await metric(other.registry, 'argo_events_action_triggered_total')) >= 20,
      );
      expect(await metric(other.registry, 'argo_events_action_triggered_total')).toBe(20);
      expect(new Set(sink.on().map((r) => r.key)).size).toBe(40);
    } finally {
      await a.stop().catch(() => {});
      await c.stop().catch(() => {});
      await sink.close();
      await b.conn.close();
    }
  }, 60_000);
});
