import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceSpec } from '../../../src/api/eventsource.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { startEventSource } from '../../../src/eventsources/runtime.ts';
import { newRegistry } from '../../../src/observability/metrics.ts';
import { waitFor } from '../../harness/proc.ts';
import { kubeConfig, kubeMissing, natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { busWithStreams, recordingLogger } from '../eventsources/fixtures.ts';

const skip = kubeMissing() || natsMissing();
describe.skipIf(skip)(`stopping a leader whose exclusive source fails to start${skipNote(skip)}`, () => {
  let ns: string;
  let conn: BusConnection;
  beforeAll(async () => {
    ns = uniqueName('leadstop');
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: ns } } });
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('stop() returns promptly and no start is tried after it', async () => {
    const { log, lines } = recordingLogger();
    const failures = () => lines.filter((l) => l.msg === 'leading: sources failed to start; trying again');
    const { bus } = await busWithStreams(conn, 'leadstop');
    const es = await startEventSource({
      name: 'files',
      namespace: bus.namespace,
      spec: EventSourceSpec.parse({
        replicas: 2,
        file: {
          drops: {
            eventType: 'CREATE',
            watchPathConfig: { directory: `/nonexistent/${ns}`, path: 'x.json' },
          },
        },
      }),
      bus,
      publisher: new Publisher(conn.nc),
      nc: conn.nc,
      registry: newRegistry(),
      log,
      resolveSecret: async () => '',
      kubeConfig: () => kubeConfig(),
      identity: 'only',
      leaseNamespace: ns,
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 500,
    });
    await waitFor('a failed start while leading', () => failures().length >= 1, { timeoutMs: 20_000 });
    const t0 = Date.now();
    const stopped = await Promise.race([
      es.stop().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 8000)),
    ]);
    const stopMs = Date.now() - t0;
    const triedAtStop = failures().length;
    // Longer than the next retry wait (2 s, then 4 s): a loop still running would try again.
    await new Promise((r) => setTimeout(r, 4500));
    expect(stopped, `stop() still waiting after ${stopMs} ms`).toBe(true);
    expect(failures().length).toBe(triedAtStop);
  }, 60_000);
});
