// The azureQueueStorage EventSource against Azurite: messages become events (upstream payload,
// queue message id as event id, base64 decoding, JSON body) and are deleted after storing; a
// full bus holds a message (not deleted, dequeue count unchanged); a message that reappears
// after a crash is stored once; an endpoint that goes away is retried; a wrong account key and
// a missing queue fail the start with a clear error; while the bus refuses, the whole received
// batch stays invisible; a message the bus refuses for good is deleted and counted (issue 20
// review, 1 and 7).
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretKeySelector } from '../../../src/api/k8s.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { Publisher } from '../../../src/bus/publisher.ts';
import { eventStreamName, eventSubject } from '../../../src/bus/subjects.ts';
import { encodeEvent, envelope } from '../../../src/eventsources/envelope.ts';
import { queueHold } from '../../../src/eventsources/retry.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { type Azurite, azuriteMissing, startAzurite } from '../../harness/azurite.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { TcpProxy } from '../../harness/tcp-proxy.ts';
import { sourceBed } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

const skip = natsMissing() ?? azuriteMissing();
describe.skipIf(skip)(`azureQueueStorage EventSource${skipNote(skip)}`, () => {
  let azurite: Azurite;
  let conn: BusConnection;
  let service: QueueServiceClient;
  const secrets: Record<string, string> = {};
  const resolveSecret = async (sel: SecretKeySelector) => secrets[`${sel.name}/${sel.key}`] ?? '';
  beforeAll(async () => {
    azurite = await startAzurite();
    secrets['az/conn'] = azurite.connectionString();
    secrets['az/wrong'] = azurite.connectionString({ key: Buffer.from('not the key').toString('base64') });
    service = QueueServiceClient.fromConnectionString(azurite.connectionString());
    conn = await BusConnection.open({ url: natsUrl() });
  }, 40_000);
  afterAll(async () => {
    await conn?.close();
    await azurite?.stop();
  });
  const setup = (streamConfig = '') =>
    sourceBed(conn, { prefix: 'azq', name: 'azq-es', log, streamConfig, resolveSecret });
  const queue = async () => {
    const name = uniqueName('q');
    const q = service.getQueueClient(name);
    await q.create();
    return q;
  };
  const entry = (queueName: string, key = 'conn') => ({
    queueName,
    connectionString: { name: 'az', key },
    waitTimeInSeconds: 1,
  });
  const remaining = async (q: ReturnType<QueueServiceClient['getQueueClient']>) =>
    (await q.getProperties()).approximateMessagesCount ?? -1;

  it('messages become events (message id, base64 + JSON body) and are deleted after storing', async () => {
    const s = await setup();
    const q = await queue();
    const es = await s.start({
      azureQueueStorage: { jobs: { ...entry(q.name), jsonBody: true, decodeMessage: true } },
    });
    try {
      const sent = await q.sendMessage(Buffer.from(JSON.stringify({ job: 7 })).toString('base64'));
      await waitFor('event', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      const [ev] = await s.stored();
      expect(ev).toMatchObject({ id: sent.messageId, type: 'azureQueueStorage', subject: 'jobs' });
      expect(ev!.data).toMatchObject({ messageID: sent.messageId, body: { job: 7 } });
      await waitFor('queue empty', async () => (await remaining(q)) === 0);
    } finally {
      await es.stop();
    }
  }, 40_000);

  it('a full bus holds the message (not deleted); it is stored once room is made', async () => {
    const s = await setup('maxMsgs: 1');
    const q = await queue();
    const es = await s.start({ azureQueueStorage: { held: entry(q.name) } });
    try {
      await q.sendMessage('one');
      await q.sendMessage('two');
      await waitFor('one stored', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      await new Promise((r) => setTimeout(r, 1500));
      expect(await remaining(q)).toBe(1);
      await s.jsm.streams.purge(eventStreamName(s.bus));
      await waitFor('the held one stored', async () => (await s.stored()).length === 1, {
        timeoutMs: 20_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['two']);
      await waitFor('queue empty', async () => (await remaining(q)) === 0);
    } finally {
      await es.stop();
    }
  }, 40_000);

  it('a message stored but not deleted before a crash reappears and is stored once', async () => {
    const s = await setup();
    const q = await queue();
    await q.sendMessage('again');
    const got = await q.receiveMessages({ visibilityTimeout: 1 });
    const id = got.receivedMessageItems[0]!.messageId;
    const ev = envelope({ id, source: 'azq-es', type: 'azureQueueStorage', subject: 'again', data: {} });
    await new Publisher(conn.nc).publish(eventSubject(s.bus, 'azq-es', 'again'), encodeEvent(ev), {
      msgId: `azq-es/again/${id}`,
    });
    const es = await s.start({ azureQueueStorage: { again: entry(q.name) } });
    try {
      await waitFor('queue empty', async () => (await remaining(q)) === 0, { timeoutMs: 20_000 });
      expect((await s.stored()).map((e) => e.id)).toEqual([id]);
    } finally {
      await es.stop();
    }
  }, 40_000);

  it('an endpoint that goes away is retried with backoff', async () => {
    const s = await setup();
    const q = await queue();
    const proxy = await TcpProxy.start(azurite.port);
    secrets['az/proxied'] = azurite.connectionString({ port: proxy.port });
    const es = await s.start({ azureQueueStorage: { flaky: entry(q.name, 'proxied') } });
    try {
      await q.sendMessage('before');
      await waitFor('first', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      await proxy.down();
      await new Promise((r) => setTimeout(r, 1500));
      await q.sendMessage('during');
      await new Promise((r) => setTimeout(r, 2000));
      await proxy.up();
      await waitFor('sent during the outage', async () => (await s.stored()).length === 2, {
        timeoutMs: 40_000,
      });
    } finally {
      await es.stop();
      await proxy.down();
    }
  }, 60_000);

  it('a wrong account key and a missing queue fail the start with a clear error', async () => {
    const s = await setup();
    const q = await queue();
    await expect(s.start({ azureQueueStorage: { bad: entry(q.name, 'wrong') } })).rejects.toThrow(
      /azureQueueStorage queue .*(AuthorizationFailure|AuthenticationFailed|403)/,
    );
    await expect(s.start({ azureQueueStorage: { gone: entry('no-such-queue') } })).rejects.toThrow(
      /QueueNotFound|404/,
    );
  });

  it('while the bus refuses, every message of the received batch stays invisible to other consumers', async () => {
    const s = await setup('maxMsgs: 1');
    const q = await queue();
    for (const m of ['m1', 'm2', 'm3']) await q.sendMessage(m);
    const saved = { ...queueHold };
    Object.assign(queueHold, { visibilitySeconds: 2, extendEveryMs: 600 });
    const es = await s.start({ azureQueueStorage: { batch: entry(q.name) } });
    try {
      await waitFor('m1 stored', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      // Longer than the visibility timeout (2 s): m2 (held) and m3 (waiting) must stay hidden.
      await new Promise((r) => setTimeout(r, 4_000));
      const other = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 1 });
      expect(other.receivedMessageItems.map((m) => m.messageText)).toEqual([]);
      for (const next of ['m2', 'm3']) {
        await s.jsm.streams.purge(eventStreamName(s.bus));
        await waitFor(`${next} stored`, async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
        expect((await s.stored()).map((e) => e.data as { body: string })[0]!.body).toBe(next);
      }
      await waitFor('queue empty', async () => (await remaining(q)) === 0);
    } finally {
      await es.stop();
      Object.assign(queueHold, saved);
    }
  }, 60_000);

  it('a message too large for the bus is counted and deleted (no dlq); the queue moves on', async () => {
    const s = await setup('maxMsgSize: 4KB');
    const q = await queue();
    const es = await s.start({ azureQueueStorage: { poison: entry(q.name) } });
    try {
      for (const m of ['small', 'x'.repeat(8_000), 'after']) await q.sendMessage(m);
      await waitFor('small and after stored', async () => (await s.stored()).length === 2, {
        timeoutMs: 20_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['small', 'after']);
      await waitFor('queue empty', async () => (await remaining(q)) === 0);
    } finally {
      await es.stop();
    }
  }, 60_000);
});
