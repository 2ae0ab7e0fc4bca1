// `sns`: subscribes this EventSource's webhook (webhook.url + endpoint) to the SNS topic at start
// and receives its messages there. SubscriptionConfirmation is confirmed through the SNS API
// (ConfirmSubscription with the message's token) and answered 200 without an event; each
// Notification becomes one event with upstream's payload {header, body, metadata} and its
// MessageId as the event id, so SNS's own retries of a delivery are stored once; 200 only after
// the bus stored it (503 otherwise, and SNS retries). With `validateSignature` every message's
// signature is checked first (sns-signature.ts): a forged or altered one is answered 403 and
// nothing is published; a certificate that cannot be fetched is 503 (SNS retries). Wrong
// credentials or a missing topic fail the start with a clear error; an unreachable SNS API is
// retried in the background. Without webhook.url the subscription is left to the operator.
import { ConfirmSubscriptionCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import type { SNSEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { retryUntil } from '../retry.ts';
import { publicUrl } from '../webhook/hooks.ts';
import { RetryLater } from '../webhook/route.ts';
import { addSignedRoute } from '../webhook/signed.ts';
import { awsClientConfig, describeAwsError, isFatalAwsError } from './credentials.ts';
import { type SnsMessage, snsSignatureProblem } from './sns-signature.ts';

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
        const m = (body ?? {}) as SnsMessage;
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
      try {
        await subscribe();
      } catch (err) {
        if (isFatalAwsError(err)) throw clear(err);
        ctx.log.warn(
          { err: (err as Error).message },
          'sns: cannot subscribe yet; retrying in the background',
        );
        void retryUntil(subscribe, {
          signal,
          fatal: isFatalAwsError,
          onRetry: (e, waitMs) =>
            ctx.log.warn({ err: (e as Error).message, retryInMs: waitMs }, 'sns: cannot subscribe'),
        }).catch((e: unknown) => {
          if (!signal.aborted) ctx.log.error({ err: clear(e).message }, 'sns: subscription refused');
        });
      }
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
