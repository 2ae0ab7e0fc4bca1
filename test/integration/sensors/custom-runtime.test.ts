// A custom (gRPC) trigger through the whole Sensor runtime on a real nats-server: the runner is
// loaded on first use, an event becomes one Execute carrying the Sensor's idempotency key, a
// transient UNAVAILABLE answer is retried by retryStrategy (same key), and a failed policy
// dead-letters the event once.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomTriggerServer } from '../../harness/grpc-servers.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { newBus, runSensor, type TestBus, until } from './fixtures.ts';

describe.skipIf(natsMissing())(`custom trigger in the Sensor runtime${skipNote(natsMissing())}`, () => {
  let b: TestBus;
  let server: CustomTriggerServer;
  beforeAll(async () => {
    b = await newBus(natsUrl());
    server = new CustomTriggerServer();
    await server.start();
  });
  afterAll(async () => {
    server?.stop();
    await b?.conn.close();
  });

  const spec = (event: string) => ({
    dependencies: [{ name: 'order', eventSourceName: 'hooks', eventName: event }],
    triggers: [
      {
        template: {
          name: 'pipeline',
          custom: {
            serverURL: server.address,
            spec: { pipeline: 'build' },
            payload: [{ src: { dependencyName: 'order', dataKey: 'n' }, dest: 'n' }],
          },
        },
        retryStrategy: { steps: 3, duration: '50ms' },
      },
    ],
  });
  const executes = () => server.calls.filter((c) => c.method === 'Execute');

  it('one Execute per event; a transient failure is retried with the same idempotency key', async () => {
    server.calls.length = 0;
    server.fail = { code: grpc.status.UNAVAILABLE, times: 1 };
    const s = await runSensor(b, 'custom-ok', spec('custom-ok'));
    try {
      await b.emit('hooks', 'custom-ok', { n: 1 });
      await until('executed', () => executes().length === 2);
      await new Promise((r) => setTimeout(r, 300));
      const [first, second] = executes();
      expect(executes()).toHaveLength(2);
      expect(second!.metadata['idempotency-key']).toBe(first!.metadata['idempotency-key']);
      expect(JSON.parse(second!.payload!)).toEqual({ n: '1' });
      expect((await b.deadLetters()).filter((d) => d.sensor === 'custom-ok')).toHaveLength(0);
    } finally {
      server.fail = undefined;
      await s.stop();
    }
  });

  it('a failed policy dead-letters the event once', async () => {
    server.calls.length = 0;
    server.policy = { success: false, message: 'pipeline failed' };
    const s = await runSensor(b, 'custom-bad', spec('custom-bad'));
    try {
      await b.emit('hooks', 'custom-bad', { n: 2 });
      await until(
        'dead-lettered',
        async () => (await b.deadLetters()).filter((d) => d.sensor === 'custom-bad').length === 1,
      );
      expect(executes()).toHaveLength(1);
    } finally {
      server.policy = { success: true, message: 'ok' };
      await s.stop();
    }
  });
});
