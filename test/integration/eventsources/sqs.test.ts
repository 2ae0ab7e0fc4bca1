// The sqs EventSource against a real AWS API server (moto, with credentials enforced): messages
// become events with upstream's payload and their MessageId as id, and are deleted only after
// storing; a full bus holds a message (not deleted, not received again); a message received but
// not deleted before a crash comes back and is stored once; an endpoint that goes away and comes
// back is retried; a wrong key fails the start with AWS's reason; binary attributes are base64;
// a message the bus refuses for good is left to the queue's redrive policy (DLQ) while the rest
// of the queue moves on; stored messages of a batch stay invisible while a later one is held
// (issue 20 review, 1, 5 and 7).
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretKeySelector } from '../../../src/api/k8s.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { queueHold } from '../../../src/eventsources/retry.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { type Moto, motoMissing, startMoto } from '../../harness/moto.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { TcpProxy } from '../../harness/tcp-proxy.ts';
import { sourceBed } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

const skip = natsMissing() ?? motoMissing();
describe.skipIf(skip)(`sqs EventSource${skipNote(skip)}`, () => {
  let moto: Moto;
  let conn: BusConnection;
  let sqs: SQSClient;
  const secrets: Record<string, string> = {};
  const resolveSecret = async (sel: SecretKeySelector) => secrets[`${sel.name}/${sel.key}`] ?? '';

  const setup = (streamConfig = '') =>
    sourceBed(conn, { prefix: 'sqs', name: 'sqs-es', log, streamConfig, resolveSecret });
  const queue = async () => {
    const name = uniqueName('q');
    const r = await sqs.send(new CreateQueueCommand({ QueueName: name }));
    return { name, url: r.QueueUrl! };
  };
  const counts = async (url: string) => {
    const r = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(r.Attributes?.ApproximateNumberOfMessages),
      inFlight: Number(r.Attributes?.ApproximateNumberOfMessagesNotVisible),
    };
  };
  const entry = (name: string, endpoint = moto.endpoint, secretKey = 'secret') => ({
    queue: name,
    region: moto.region,
    endpoint,
    waitTimeSeconds: 1,
    accessKey: { name: 'aws', key: 'id' },
    secretKey: { name: 'aws', key: secretKey },
  });

  beforeAll(async () => {
    moto = await startMoto();
    secrets['aws/id'] = moto.credentials.accessKeyId;
    secrets['aws/secret'] = moto.credentials.secretAccessKey;
    secrets['aws/wrong'] = 'not-the-secret';
    conn = await BusConnection.open({ url: natsUrl() });
    sqs = new SQSClient({ region: moto.region, endpoint: moto.endpoint, credentials: moto.credentials });
  }, 90_000);
  afterAll(async () => {
    sqs?.destroy();
    await conn?.close();
    await moto?.stop();
  });

  it('messages become events (MessageId as id, attributes, JSON body) and are deleted after storing', async () => {
    const s = await setup();
    const q = await queue();
    const es = await s.start({
      sqs: { orders: { ...entry(q.name), jsonBody: true, metadata: { team: 'shop' } } },
    });
    try {
      const sent = await sqs.send(
        new SendMessageCommand({
          QueueUrl: q.url,
          MessageBody: JSON.stringify({ order: 'A-1' }),
          MessageAttributes: { kind: { DataType: 'String', StringValue: 'created' } },
        }),
      );
      await sqs.send(
        new SendMessageCommand({ QueueUrl: q.url, MessageBody: JSON.stringify({ order: 'A-2' }) }),
      );
      await waitFor('two events', async () => (await s.stored()).length === 2, { timeoutMs: 20_000 });
      const [first] = await s.stored();
      expect(first).toMatchObject({ id: sent.MessageId, type: 'sqs', subject: 'orders' });
      expect(first!.data).toMatchObject({
        messageId: sent.MessageId,
        body: { order: 'A-1' },
        messageAttributes: { kind: { DataType: 'String', StringValue: 'created' } },
        metadata: { team: 'shop' },
      });
      await waitFor('queue empty', async () => {
        const c = await counts(q.url);
        return c.visible + c.inFlight === 0;
      });
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a full bus holds the message (not deleted, not received again) until room is made', async () => {
    const s = await setup('maxMsgs: 1');
    const q = await queue();
    const es = await s.start({ sqs: { held: entry(q.name) } });
    try {
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'one' }));
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'two' }));
      await waitFor('one stored', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      await new Promise((r) => setTimeout(r, 2000));
      expect((await counts(q.url)).inFlight).toBe(1);
      await s.jsm.streams.purge(eventStreamName(s.bus));
      await waitFor('the held one stored', async () => (await s.stored()).length === 1, {
        timeoutMs: 20_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['two']);
      await waitFor('queue empty', async () => {
        const c = await counts(q.url);
        return c.visible + c.inFlight === 0;
      });
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('a message stored but not deleted before a crash comes back and is stored once', async () => {
    const s = await setup();
    const q = await queue();
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'again' }));
    // The crashed receiver: got the message (visible again after 1 s), stored its event, no delete.
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, VisibilityTimeout: 1 }));
    const id = got.Messages![0]!.MessageId!;
    const ev = envelope({ id, source: 'sqs-es', type: 'sqs', subject: 'again', data: {} });
    await new Publisher(conn.nc).publish(eventSubject(s.bus, 'sqs-es', 'again'), encodeEvent(ev), {
      msgId: `sqs-es/again/${id}`,
    });
    const es = await s.start({ sqs: { again: entry(q.name) } });
    try {
      await waitFor(
        'queue empty',
        async () => {
          const c = await counts(q.url);
          return c.visible + c.inFlight === 0;
        },
        { timeoutMs: 20_000 },
      );
      expect((await s.stored()).map((e) => e.id)).toEqual([id]);
    } finally {
      await es.stop();
    }
  }, 60_000);

  it('an endpoint that goes away is retried with backoff; messages sent meanwhile arrive once it is back', async () => {
    const s = await setup();
    const q = await queue();
    const proxy = await TcpProxy.start(Number(new URL(moto.endpoint).port));
    const es = await s.start({ sqs: { flaky: entry(q.name, `http://127.0.0.1:${proxy.port}`) } });
    try {
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'before' }));
      await waitFor('first event', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      await proxy.down();
      // A long poll cut by the outage may still take a message on the server side (it is then
      // invisible for the visibility timeout): send after the poll in flight has ended.
      await new Promise((r) => setTimeout(r, 1500));
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'during' }));
      await new Promise((r) => setTimeout(r, 3000));
      expect(await s.stored()).toHaveLength(1);
      await proxy.up();
      await waitFor('event sent during the outage', async () => (await s.stored()).length === 2, {
        timeoutMs: 40_000,
      });
    } finally {
      await es.stop();
      await proxy.down();
    }
  }, 90_000);

  it('a wrong secret key fails the start with the reason AWS gives', async () => {
    const s = await setup();
    const q = await queue();
    await expect(s.start({ sqs: { bad: entry(q.name, moto.endpoint, 'wrong') } })).rejects.toThrow(
      /sqs queue .*(InvalidClientTokenId|SignatureDoesNotMatch|security token|access denied)/,
    );
    await expect(s.start({ sqs: { missing: entry('no-such-queue') } })).rejects.toThrow(
      /no-such-queue.*NonExistentQueue|QueueDoesNotExist/,
    );
  }, 30_000);

  /** Runs `fn` with queue visibility of 2 s, extended every 0.6 s (the defaults are 60 s / 20 s). */
  const shortHold = async (fn: () => Promise<void>) => {
    const saved = { ...queueHold };
    Object.assign(queueHold, { visibilitySeconds: 2, extendEveryMs: 600 });
    try {
      await fn();
    } finally {
      Object.assign(queueHold, saved);
    }
  };

  it('binary attributes are base64; a message too large for the bus goes to the DLQ, the queue moves on', async () => {
    const s = await setup('maxMsgSize: 4KB');
    const dlq = await queue();
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.url, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    const name = uniqueName('q');
    const url = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: name,
          Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }) },
        }),
      )
    ).QueueUrl!;
    await shortHold(async () => {
      const es = await s.start({ sqs: { poison: entry(name) } });
      try {
        const bin = { DataType: 'Binary', BinaryValue: Buffer.from('hi') };
        await sqs.send(
          new SendMessageCommand({ QueueUrl: url, MessageBody: 'small', MessageAttributes: { bin } }),
        );
        await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(8_000) }));
        await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'after' }));
        await waitFor('small and after stored', async () => (await s.stored()).length === 2, {
          timeoutMs: 20_000,
        });
        const evs = await s.stored();
        expect(evs.map((e) => (e.data as { body: string }).body)).toEqual(['small', 'after']);
        expect(evs[0]!.data).toMatchObject({
          messageAttributes: { bin: { DataType: 'Binary', BinaryValue: 'aGk=' } },
        });
        await waitFor('the refused message in the DLQ', async () => (await counts(dlq.url)).visible === 1, {
          timeoutMs: 20_000,
        });
        expect(await counts(url)).toEqual({ visible: 0, inFlight: 0 });
      } finally {
        await es.stop();
      }
    });
  }, 60_000);

  it('while a later message of a batch is held, the stored ones stay invisible until deleted', async () => {
    const s = await setup('maxMsgs: 1');
    const q = await queue();
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'one' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'two' }));
    await shortHold(async () => {
      const es = await s.start({ sqs: { batch: entry(q.name) } });
      try {
        await waitFor('one stored', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
        // Longer than the visibility timeout (2 s): another receiver must still get nothing.
        await new Promise((r) => setTimeout(r, 4_000));
        const other = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10 }));
        expect(other.Messages ?? []).toHaveLength(0);
        await s.jsm.streams.purge(eventStreamName(s.bus));
        await waitFor('the held one stored', async () => (await s.stored()).length === 1, {
          timeoutMs: 20_000,
        });
        await waitFor('queue empty', async () => {
          const c = await counts(q.url);
          return c.visible + c.inFlight === 0;
        });
        expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['two']);
      } finally {
        await es.stop();
      }
    });
  }, 60_000);
});
