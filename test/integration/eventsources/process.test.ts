// `sluice eventsource` run from the container spec the controller generates (args + env), as a
// kubelet would: it takes a webhook delivery to the bus and stops cleanly on SIGTERM.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { parseStreamConfig } from '../../../src/api/stream-config.ts';
import { ensureStreams } from '../../../src/bus/streams.ts';
import { eventStreamName } from '../../../src/bus/subjects.ts';
import { deploymentFor } from '../../../src/controller/resources/workload.ts';
import { decodeEvent } from '../../../src/eventsources/envelope.ts';
import { freePort } from '../../harness/ports.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { startSluice } from '../../harness/sluice-process.ts';

describe.skipIf(natsMissing())(`sluice eventsource process${skipNote(natsMissing())}`, () => {
  it('runs from its Deployment container spec, accepts a webhook and exits 0 on SIGTERM', async () => {
    const namespace = uniqueName('esproc');
    const port = await freePort();
    const nc = await connect({ servers: natsUrl() });
    const jsm = await jetstreamManager(nc);
    const cfg = parseStreamConfig('retention: limits'); // no Sensor: keep what is published to read it back
    if (!cfg.ok) throw new Error('config');
    await ensureStreams(jsm, { namespace, busName: 'default' }, cfg.settings, 1);
    const obj = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'EventSource' as const,
      metadata: { name: 'hooks', namespace, uid: 'u1' },
      spec: { webhook: { push: { port: String(port), endpoint: '/push', method: 'POST' } } },
    };
    const d = deploymentFor({ ...obj, ...obj.metadata, kind: 'EventSource' }, obj, {
      image: 'sluice:test',
      bus: { busName: 'default', namespace, url: natsUrl() },
    });
    const ctr = d.spec!.template.spec!.containers[0]!;
    const env = Object.fromEntries(
      ctr.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    const args = ctr.args!.map((a) => (a === '7777' ? '0' : a));
    const p = await startSluice(args, { ...env, POD_NAME: 'hooks-0', POD_NAMESPACE: namespace });
    try {
      await waitFor(
        'webhook port',
        async () =>
          (
            await fetch(`http://127.0.0.1:${port}/push`, { method: 'POST', body: '{}' }).catch(
              () => undefined,
            )
          )?.status === 200,
      );
      const res = await fetch(`http://127.0.0.1:${port}/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'abc' },
        body: '{"hello":"bus"}',
      });
      expect(res.status).toBe(200);
      const m = await jsm.streams.getMessage(eventStreamName({ namespace, busName: 'default' }), { seq: 2 });
      expect(decodeEvent(m!.data)).toMatchObject({
        id: 'abc',
        source: 'hooks',
        subject: 'push',
        data: { body: { hello: 'bus' } },
      });
      expect(await p.metricValue('argo_events_events_sent_total')).toBe(2);
      expect((await fetch(`http://127.0.0.1:${p.metricsPort}/readyz`)).status).toBe(200);
    } finally {
      await p.proc.stop();
      expect(await p.proc.exited()).toBe(0);
      await nc.close();
    }
  });
});
