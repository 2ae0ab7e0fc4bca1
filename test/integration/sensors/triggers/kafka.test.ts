// The kafka trigger against a real Apache Kafka broker (KRaft): the payload, key (from type-level
// parameters), headers, secure headers and Idempotency-Key as a consumer sees them; one message
// per idempotency key; a stopped broker is a transient failure and the next attempt succeeds once
// it is back; wrong SASL credentials are Misconfigured (not retried).
import { Kafka, type KafkaMessage, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaTrigger } from '../../../../src/api/sensor.ts';
import { kafkaTrigger } from '../../../../src/sensors/triggers/kafka.ts';
import { KAFKA_SASL_USER, type KafkaBroker, kafkaMissing, startKafka } from '../../../harness/kafka.ts';
import { waitFor } from '../../../harness/proc.ts';
import { skipNote, uniqueName } from '../../../harness/shared.ts';
import { makeCtx, triggerError } from './ctx.ts';

type Spec = import('zod').infer<typeof KafkaTrigger>;
const payload: Spec['payload'] = [{ src: { dependencyName: 'dep', dataKey: 'body.order' }, dest: 'order' }];
const data = { body: { order: 'A-1', customer: 'c-42' } };

const skip = kafkaMissing();
describe.skipIf(skip)(`kafka trigger${skipNote(skip)}`, () => {
  let broker: KafkaBroker;
  let kafka: Kafka;
  beforeAll(async () => {
    broker = await startKafka();
    kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  }, 90_000);
  afterAll(async () => {
    await broker?.stop();
  });

  const topic = async () => {
    const name = uniqueName('out');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: name, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    return name;
  };
  const read = async (t: string, count: number): Promise<KafkaMessage[]> => {
    const got: KafkaMessage[] = [];
    const c = kafka.consumer({ groupId: uniqueName('reader') });
    await c.connect();
    await c.subscribe({ topic: t, fromBeginning: true });
    await c.run({ eachMessage: async ({ message }) => void got.push(message) });
    try {
      await waitFor(`${count} messages`, () => got.length >= count, { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 500));
      return got;
    } finally {
      await c.disconnect();
    }
  };

  it('produces payload, key from parameters, headers and Idempotency-Key; once per idempotency key', async () => {
    const t = await topic();
    const runner = kafkaTrigger();
    const spec: Spec = {
      url: broker.bootstrap,
      topic: t,
      payload,
      headers: { 'x-source': 'sluice' },
      secureHeaders: [{ name: 'x-token', valueFrom: { secretKeyRef: { name: 'k', key: 'token' } } }],
      parameters: [{ src: { dependencyName: 'dep', dataKey: 'body.customer' }, dest: 'partitioningKey' }],
    };
    const secrets = { k: { token: 's3cret' } };
    const ctx = makeCtx({ data: { dep: data }, key: 'kafka-key-1', secrets });
    try {
      expect((await runner.fire(spec, ctx)).detail).toMatch(/produced to .* at offset/);
      expect((await runner.fire(spec, { ...ctx, attempt: 2 })).detail).toMatch(/already produced/);
      await runner.fire(spec, makeCtx({ data: { dep: data }, key: 'kafka-key-2', secrets }));
      const got = await read(t, 2);
      expect(got).toHaveLength(2);
      const m = got.find((x) => x.headers?.['Idempotency-Key']?.toString() === 'kafka-key-1')!;
      expect(JSON.parse(m.value!.toString())).toEqual({ order: 'A-1' });
      expect(m.key?.toString()).toBe('c-42');
      expect(m.headers?.['x-source']?.toString()).toBe('sluice');
      expect(m.headers?.['x-token']?.toString()).toBe('s3cret');
      expect(m.headers?.traceparent?.toString()).toBe(ctx.traceparent);
    } finally {
      await runner.close?.();
    }
  }, 60_000);

  it('a stopped broker is a transient failure; the next attempt after it is back succeeds', async () => {
    const t = await topic();
    const runner = kafkaTrigger();
    const spec: Spec = { url: broker.bootstrap, topic: t, payload };
    try {
      await runner.fire(spec, makeCtx({ data: { dep: data } }));
      await broker.server.kill();
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 8_000);
      const err = await triggerError(runner.fire(spec, makeCtx({ data: { dep: data }, signal: ac.signal })));
      clearTimeout(timer);
      expect(err.retryable).toBe(true);
      await broker.server.start();
      await waitFor(
        'a send after the restart',
        async () => {
          await runner.fire(spec, makeCtx({ data: { dep: data }, key: 'after-restart' }));
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 1000 },
      );
      expect((await read(t, 2)).length).toBe(2);
    } finally {
      await runner.close?.();
    }
  }, 120_000);

  it('wrong SASL credentials are Misconfigured; right ones produce', async () => {
    const t = await topic();
    const runner = kafkaTrigger();
    const spec = (pw: string): Spec => ({
      url: broker.saslBootstrap,
      topic: t,
      payload,
      sasl: {
        mechanism: 'PLAIN',
        userSecret: { name: 'k', key: 'user' },
        passwordSecret: { name: 'k', key: pw },
      },
    });
    const secrets = { k: { user: KAFKA_SASL_USER.username, good: KAFKA_SASL_USER.password, bad: 'nope' } };
    try {
      const err = await triggerError(
        runner.fire(spec('bad'), makeCtx({ data: { dep: data }, secrets })),
        'Misconfigured',
      );
      expect(err.retryable).toBe(false);
      expect(err.message).not.toContain('nope');
      await runner.fire(spec('good'), makeCtx({ data: { dep: data }, secrets }));
      expect(await read(t, 1)).toHaveLength(1);
    } finally {
      await runner.close?.();
    }
  }, 60_000);
});
