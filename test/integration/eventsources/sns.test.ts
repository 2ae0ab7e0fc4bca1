// The sns EventSource against moto's SNS (credentials enforced) and against messages signed with
// certificates generated here: the source subscribes its webhook URL, and a published message
// arrives as an event with upstream's payload and the SNS MessageId as id; with validateSignature
// a signed SubscriptionConfirmation is confirmed through the API (no event),
// a correctly signed notification is accepted (and its redelivery stored once), an altered or
// unsigned one gets 403, a certificate from a non-SNS host 403; the subscription is retried while
// the SNS API is unreachable; wrong keys fail the start with a clear error.
import { execFileSync } from 'node:child_process';
import { createSign, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTopicCommand,
  ListSubscriptionsByTopicCommand,
  PublishCommand,
  SNSClient,
} from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretKeySelector } from '../../../src/api/k8s.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import {
  resetSnsCertCache,
  type SnsMessage,
  snsSignatureProblem,
  stringToSign,
} from '../../../src/eventsources/aws/sns-signature.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { ensurePki } from '../../harness/certs.ts';
import { type Moto, motoMissing, startMoto } from '../../harness/moto.ts';
import { freePort } from '../../harness/ports.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote, uniqueName } from '../../harness/shared.ts';
import { TcpProxy } from '../../harness/tcp-proxy.ts';
import { sourceBed } from './fixtures.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

const skip = natsMissing() ?? motoMissing();
describe.skipIf(skip)(`sns EventSource${skipNote(skip)}`, () => {
  let moto: Moto;
  let conn: BusConnection;
  let sns: SNSClient;
  let certServer: Server;
  let certUrl: string;
  let signingKey: string;
  let certFetches = 0;
  const secrets: Record<string, string> = {};
  const resolveSecret = async (sel: SecretKeySelector) => secrets[`${sel.name}/${sel.key}`] ?? '';

  beforeAll(async () => {
    moto = await startMoto();
    Object.assign(secrets, {
      'aws/id': moto.credentials.accessKeyId,
      'aws/secret': moto.credentials.secretAccessKey,
      'aws/wrong': 'not-the-secret',
    });
    sns = new SNSClient({ region: moto.region, endpoint: moto.endpoint, credentials: moto.credentials });
    conn = await BusConnection.open({ url: natsUrl() });
    // An SNS-style signing certificate (RSA, self-signed), served over HTTPS by a test CA.
    const dir = mkdtempSync(join(tmpdir(), 'sluice-sns-'));
    const pki = ensurePki(join(dir, 'pki'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'sign.key',
        '-out',
        'sign.pem',
        '-days',
        '2',
        '-subj',
        '/CN=sns.test',
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    signingKey = readFileSync(join(dir, 'sign.key'), 'utf8');
    const pem = readFileSync(join(dir, 'sign.pem'));
    certServer = createServer(
      { cert: readFileSync(pki.servingCert), key: readFileSync(pki.servingKey) },
      (_req, res) => {
        certFetches++;
        res.end(pem);
      },
    );
    const port = await freePort();
    await new Promise<void>((r) => certServer.listen(port, '127.0.0.1', () => r()));
    certUrl = `https://127.0.0.1:${port}/SimpleNotificationService-test.pem`;
    process.env.SLUICE_SNS_CERT_HOSTS = '^127\\.0\\.0\\.1$';
    process.env.SLUICE_SNS_CERT_CA = pki.caCert;
  }, 90_000);
  afterAll(async () => {
    delete process.env.SLUICE_SNS_CERT_HOSTS;
    delete process.env.SLUICE_SNS_CERT_CA;
    certServer?.close();
    sns?.destroy();
    await conn?.close();
    await moto?.stop();
  });

  async function setup() {
    const t = await sourceBed(conn, {
      prefix: 'sns',
      name: 'sns-es',
      log,
      resolveSecret,
      runtime: { host: '127.0.0.1' },
    });
    const port = await freePort();
    const start = (entry: Record<string, unknown>) => t.start({ sns: { topic: entry } });
    return { ...t, start, port, url: `http://127.0.0.1:${port}` };
  }
  const entry = (
    topicArn: string,
    port: number,
    o: { endpoint?: string; secret?: string; validate?: boolean; url?: boolean } = {},
  ) => ({
    webhook: {
      endpoint: '/sns',
      port: String(port),
      ...(o.url === false ? {} : { url: `http://127.0.0.1:${port}` }),
    },
    topicArn,
    region: moto.region,
    endpoint: o.endpoint ?? moto.endpoint,
    accessKey: { name: 'aws', key: 'id' },
    secretKey: { name: 'aws', key: o.secret ?? 'secret' },
    ...(o.validate ? { validateSignature: true } : {}),
  });
  const topic = async () => (await sns.send(new CreateTopicCommand({ Name: uniqueName('t') }))).TopicArn!;
  const signed = (m: SnsMessage): SnsMessage => ({
    ...m,
    SignatureVersion: '2',
    SigningCertURL: certUrl,
    Signature: createSign('RSA-SHA256').update(stringToSign(m)).sign(signingKey, 'base64'),
  });
  const post = (url: string, m: unknown) =>
    fetch(`${url}/sns`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=UTF-8' },
      body: JSON.stringify(m),
    });

  it('subscribes its webhook; a message published to the topic becomes an event with the MessageId as id', async () => {
    const s = await setup();
    const arn = await topic();
    const es = await s.start(entry(arn, s.port));
    try {
      await waitFor('subscribed', async () => {
        const subs = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: arn }));
        return (subs.Subscriptions ?? []).length > 0;
      });
      const subs = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: arn }));
      expect(subs.Subscriptions?.map((x) => x.Endpoint)).toEqual([`${s.url}/sns`]);
      const sent = await sns.send(
        new PublishCommand({ TopicArn: arn, Message: 'order A-1 shipped', Subject: 'ship' }),
      );
      await waitFor('event', async () => (await s.stored()).length === 1, { timeoutMs: 20_000 });
      const [ev] = await s.stored();
      expect(ev).toMatchObject({ id: sent.MessageId, type: 'sns', subject: 'topic' });
      expect((ev!.data as { body: SnsMessage }).body).toMatchObject({
        Type: 'Notification',
        Message: 'order A-1 shipped',
        TopicArn: arn,
      });
    } finally {
      await es.stop();
    }
  }, 40_000);

  it('validateSignature: signed notifications are accepted (a redelivery stored once); altered, unsigned or foreign-host ones get 403', async () => {
    const s = await setup();
    const arn = await topic();
    const es = await s.start(entry(arn, s.port, { validate: true, url: false }));
    try {
      const m = signed({
        Type: 'Notification',
        MessageId: randomUUID(),
        TopicArn: arn,
        Message: 'hello',
        Timestamp: new Date().toISOString(),
      });
      expect((await post(s.url, m)).status).toBe(200);
      expect((await post(s.url, m)).status).toBe(200);
      expect((await post(s.url, { ...m, Message: 'hello!' })).status).toBe(403);
      expect((await post(s.url, { ...m, Signature: undefined })).status).toBe(403);
      const foreign = { ...m, SigningCertURL: 'https://sns.attacker.example/x.pem' };
      expect((await post(s.url, foreign)).status).toBe(403);
      const confirm = signed({
        Type: 'SubscriptionConfirmation',
        MessageId: randomUUID(),
        Token: 'token-1',
        TopicArn: arn,
        Message: 'confirm',
        SubscribeURL: 'https://sns.invalid/confirm',
        Timestamp: new Date().toISOString(),
      });
      const answer = await post(s.url, confirm);
      expect([answer.status, await answer.text()]).toEqual([200, 'subscription confirmed\n']);
      expect((await s.stored()).map((e) => e.id)).toEqual([m.MessageId]);
    } finally {
      await es.stop();
    }
  }, 40_000);

  it('retries the subscription while the SNS API is unreachable', async () => {
    const s = await setup();
    const arn = await topic();
    const proxy = await TcpProxy.start(Number(new URL(moto.endpoint).port));
    await proxy.down();
    const es = await s.start(entry(arn, s.port, { endpoint: `http://127.0.0.1:${proxy.port}` }));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await proxy.up();
      await waitFor(
        'subscribed',
        async () =>
          ((await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: arn }))).Subscriptions ?? [])
            .length === 1,
        { timeoutMs: 30_000 },
      );
    } finally {
      await es.stop();
      await proxy.down();
    }
  }, 60_000);

  it('wrong keys fail the start with a clear error', async () => {
    const s = await setup();
    const arn = await topic();
    await expect(s.start(entry(arn, s.port, { secret: 'wrong' }))).rejects.toThrow(
      /sns topic .*(access denied|InvalidClientTokenId|SignatureDoesNotMatch)/,
    );
  });

  it('forged messages with ever new SigningCertURLs cost a bounded number of certificate fetches', async () => {
    resetSnsCertCache();
    certFetches = 0;
    const base = new URL(certUrl);
    const forged = (url: string, sig = randomBytes(256).toString('base64')) => ({
      Type: 'Notification',
      MessageId: 'm',
      Message: 'forged',
      Timestamp: '2026-01-01T00:00:00Z',
      TopicArn: 'arn:aws:sns:us-east-1:1:t',
      SignatureVersion: '1',
      Signature: sig,
      SigningCertURL: url,
    });
    const answers = new Map<string, number>();
    const count = (a: string) => answers.set(a, (answers.get(a) ?? 0) + 1);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 2_000; i += 100) {
      const batch: Array<Promise<string>> = [];
      for (let j = i; j < i + 100; j++) {
        // Query strings, fragments, new file names, and a signature that is not one.
        const url =
          j % 4 === 0
            ? `${certUrl}?n=${j}`
            : j % 4 === 1
              ? `${certUrl}#${j}`
              : `${base.origin}/SimpleNotificationService-${j}.pem`;
        const m = j % 4 === 3 ? forged(certUrl, Buffer.from('forged').toString('base64')) : forged(url);
        batch.push(
          snsSignatureProblem(m).then(
            (p) => p ?? 'valid',
            (e: Error) => `refused: ${e.message.split(';')[0]}`,
          ),
        );
      }
      for (const a of await Promise.all(batch)) count(a);
    }
    const growthMiB = (process.memoryUsage().heapUsed - before) / 1048576;
    console.log(
      'sns forged messages: 2000, certificate fetches:',
      certFetches,
      JSON.stringify([...answers]),
      `heap +${growthMiB.toFixed(1)} MiB`,
    );
    expect(certFetches).toBeLessThanOrEqual(10);
    expect(answers.get('valid')).toBeUndefined();
    expect(answers.get('SigningCertURL has a query or fragment')).toBe(1_000);
    expect(answers.get('Signature is not an RSA signature')).toBe(500);
  }, 30_000);
});
