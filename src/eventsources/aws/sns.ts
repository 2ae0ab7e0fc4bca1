// `sns`: subscribes this EventSource's webhook (webhook.url + endpoint) to the SNS topic once its
// webhook port answers, and receives the topic's messages there. SubscriptionConfirmation is
// confirmed through the SNS API (ConfirmSubscription with the message's token) and answered 200
// without an event; each
// Notification becomes one event with upstream's payload {header, body, metadata} and its
// MessageId as the event id, so SNS's own retries of a delivery are stored once; 200 only after
// the bus stored it (503 otherwise, and SNS retries). With `validateSignature` every message's
// signature is checked first (sns-signature.ts): a forged or altered one is answered 403 and
// nothing is published; a certificate that cannot be fetched is 503 (SNS retries). Wrong
// credentials or a missing topic fail the start with a clear error; an unreachable SNS API is
// retried in the background. Without webhook.url the subscription is left to the operator.
import { createConnection } from 'node:net';
import {
  ConfirmSubscriptionCommand,
  GetTopicAttributesCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import type { SNSEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { RawJson } from '../raw-json.ts';
import { pause, retryUntil } from '../retry.ts';
import { publicUrl } from '../webhook/hooks.ts';
import { RetryLater } from '../webhook/route.ts';
import { addSignedRoute } from '../webhook/signed.ts';
import { awsClientConfig, describeAwsError, isFatalAwsError } from './credentials.ts';
import { type SnsMessage, snsSignatureProblem } from './sns-signature.ts';

/** True once something accepts connections on this host's `port` (the webhook server). */
const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port }, () => {
      c.end();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });

export const adapter: SourceAdapter<SNSEventSource> = {
  type: 'sns',
  exclusive: false,
  async start(ctx) {
    const spec = ctx.spec;
    const client = new SNSClient(await awsClientConfig(spec, ctx.resolveSecret, 'sns'));
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);
    const clear = (err: unknown) =>
      new Error(`sns topic ${spec.topicArn} (${spec.region}): ${describeAwsError(err)}`);

    await addSignedRoute(ctx, {
      prepare: async (_h, body, _raw, standard) => {
        // Bodies arrive as sent (raw-json.ts); an SNS envelope is small: read its fields parsed.
        const m = ((body instanceof RawJson ? body.value : body) ?? {}) as SnsMessage;
        if (typeof m !== 'object' || typeof m.Type !== 'string')
          throw new Error('expected an SNS message (JSON with "Type")');
        if (spec.validateSignature) {
          let problem: string | undefined;
          try {
            problem = await snsSignatureProblem(m);
          } catch (err) {
            throw new RetryLater(`cannot fetch the SNS signing certificate: ${(err as Error).message}`);
          }
          if (problem) {
            ctx.processingFailed('bad-signature');
            return { reply: { status: 403, body: `${problem}\n` } };
          }
        }
        if (m.TopicArn && m.TopicArn !== spec.topicArn)
          return { reply: { status: 400, body: 'message is for another topic\n' } };
        if (m.Type === 'SubscriptionConfirmation') {
          try {
            await client.send(
              new ConfirmSubscriptionCommand({ TopicArn: spec.topicArn, Token: m.Token ?? '' }),
            );
          } catch (err) {
            throw new RetryLater(`cannot confirm the subscription: ${describeAwsError(err)}`);
          }
          ctx.log.info({ topicArn: spec.topicArn }, 'sns: subscription confirmed');
          return { reply: { status: 200, body: 'subscription confirmed\n' } };
        }
        if (m.Type !== 'Notification') return { reply: { status: 200, body: `${m.Type} noted\n` } };
        return {
          id: m.MessageId,
          data: {
            header: standard.header,
            body: m,
            ...(standard.metadata ? { metadata: standard.metadata } : {}),
          },
        };
      },
    });

    const url = publicUrl(spec.webhook);
    const subscribe = () =>
      client.send(
        new SubscribeCommand({
          TopicArn: spec.topicArn,
          Protocol: url?.startsWith('https:') ? 'https' : 'http',
          Endpoint: url,
          ReturnSubscriptionArn: true,
        }),
      );
    if (url) {
      // Credentials and the topic are checked now (a clear start error); the subscription itself
      // is made once this process's webhook port answers, so SNS's confirmation request finds it.
      try {
        await client.send(new GetTopicAttributesCommand({ TopicArn: spec.topicArn }));
      } catch (err) {
        if (isFatalAwsError(err)) throw clear(err);
        ctx.log.warn({ err: (err as Error).message }, 'sns: API unreachable; subscribing in the background');
      }
      const port = Number(spec.webhook.port);
      void (async () => {
        for (let i = 0; i < 300 && port > 0 && !signal.aborted && !(await portOpen(port)); i++)
          await pause(100, signal);
        await retryUntil(subscribe, {
          signal,
          fatal: isFatalAwsError,
          onRetry: (e, waitMs) =>
            ctx.log.warn({ err: (e as Error).message, retryInMs: waitMs }, 'sns: cannot subscribe'),
        });
        ctx.log.info({ topicArn: spec.topicArn, url }, 'sns: subscribed');
      })().catch((e: unknown) => {
        if (!signal.aborted) ctx.log.error({ err: clear(e).message }, 'sns: subscription refused');
      });
    } else {
      ctx.log.warn('sns: webhook.url is not set; subscribe this endpoint to the topic yourself');
    }
    ctx.log.info({ topicArn: spec.topicArn, url }, 'sns: receiving');
    return {
      async stop() {
        stop.abort();
        client.destroy();
      },
    };
  },
};
