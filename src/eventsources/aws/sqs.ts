// `sqs`: long-polls an SQS queue and publishes each message with its MessageId as the event id;
// a message is deleted only after the bus stored its event (deletes are batched per receive), so
// one that reappears after a crash (visibility timeout) is stored once within the bus's
// duplicates window. While an event cannot be stored the message is held: its visibility is
// extended and the publish retried with backoff, so the queue's receive count does not grow and
// a redrive policy does not dead-letter messages for a bus outage. Every message of a receive
// stays invisible until it is deleted (stored ones too, until the batch's delete). Messages that
// can never be published (not JSON with jsonBody) are deleted and counted, or, with `dlq: true`,
// left for the queue's redrive policy; one the bus refuses for good (too large) is counted and
// left: no longer extended, so the queue's redrive policy (maxReceiveCount) moves it to its DLQ.
// Binary attribute values are published as base64, as upstream does. Receivers of one queue share its messages, so every replica runs.
// Wrong credentials or a missing queue fail the start with a clear error; an unreachable
// endpoint is retried with backoff.
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { base64Binary, dateFromMs } from '../fields.ts';
import { parseJsonText } from '../json.ts';
import { Backoff, pause, queueHold, reportRefusal, retryUntil, storeHeld } from '../retry.ts';
import { awsClientConfig, describeAwsError, isFatalAwsError } from './credentials.ts';

/** Upstream's SQSEventData. */
function eventData(m: Message, body: unknown, metadata: Record<string, string> | undefined) {
  return {
    messageAttributes: base64Binary(m.MessageAttributes ?? {}),
    messageId: m.MessageId ?? '',
    body,
    ...(metadata && Object.keys(metadata).length ? { metadata } : {}),
  };
}

type Outcome = 'stored' | 'drop' | 'leave' | 'stopped';

async function publishOne(
  ctx: SourceContext<SQSEventSource>,
  m: Message,
  signal: AbortSignal,
): Promise<Outcome> {
  let body: unknown = m.Body ?? '';
  if (ctx.spec.jsonBody) {
    try {
      body = parseJsonText(m.Body ?? '');
    } catch {
      ctx.processingFailed('invalid-json');
      ctx.log.warn(
        { messageId: m.MessageId, dlq: !!ctx.spec.dlq },
        'sqs: message is not JSON although jsonBody is set; ' +
          (ctx.spec.dlq ? 'left for the dead-letter queue' : 'deleted'),
      );
      return ctx.spec.dlq ? 'leave' : 'drop';
    }
  }
  const data = eventData(m, body, ctx.spec.metadata);
  const sent = dateFromMs(m.Attributes?.SentTimestamp);
  const r = await storeHeld(
    () => ctx.emit(data, { ...(m.MessageId ? { id: m.MessageId } : {}), ...(sent ? { time: sent } : {}) }),
    {
      signal,
      onHold: (err, waitMs) =>
        ctx.log.warn(
          { messageId: m.MessageId, err: (err as Error).message, retryInMs: waitMs },
          'sqs: event not stored; message held, retrying',
        ),
    },
  );
  if (r.outcome !== 'refused') return r.outcome;
  reportRefusal(ctx, { messageId: m.MessageId }, r.err, "left for the queue's redrive policy");
  return 'leave';
}

export const adapter: SourceAdapter<SQSEventSource> = {
  type: 'sqs',
  exclusive: false,
  async start(ctx) {
    const spec = ctx.spec;
    const client = new SQSClient(await awsClientConfig(spec, ctx.resolveSecret, 'sqs'));
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);
    const queueUrl = () =>
      client
        .send(
          new GetQueueUrlCommand({
            QueueName: spec.queue,
            ...(spec.queueAccountId ? { QueueOwnerAWSAccountId: spec.queueAccountId } : {}),
          }),
        )
        .then((r) => r.QueueUrl ?? '');
    const clearError = (err: unknown) =>
      new Error(`sqs queue ${spec.queue} (${spec.region}): ${describeAwsError(err)}`);
    let url: string | undefined;
    try {
      url = await queueUrl();
    } catch (err) {
      if (isFatalAwsError(err)) throw clearError(err);
      ctx.log.warn({ err: (err as Error).message }, 'sqs: endpoint unreachable; retrying in the background');
    }

    const handleBatch = async (qurl: string, messages: Message[]) => {
      // Held until deleted: the one being published, the ones waiting, the stored ones.
      const pending = new Set(messages.map((m) => m.ReceiptHandle ?? ''));
      const extend = setInterval(() => {
        const all = [...pending];
        for (let at = 0; at < all.length; at += 10) {
          const entries = all.slice(at, at + 10).map((h, i) => ({
            Id: String(i),
            ReceiptHandle: h,
            VisibilityTimeout: queueHold.visibilitySeconds,
          }));
          void client
            .send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: qurl, Entries: entries }))
            .catch(() => {});
        }
      }, queueHold.extendEveryMs);
      const done: Message[] = [];
      try {
        for (const m of messages) {
          const outcome = await publishOne(ctx, m, signal);
          if (outcome === 'stopped') break;
          if (outcome === 'leave') pending.delete(m.ReceiptHandle ?? '');
          if (outcome === 'stored' || outcome === 'drop') done.push(m);
        }
      } finally {
        clearInterval(extend);
      }
      if (done.length) {
        const res = await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: qurl,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
          }),
        );
        if (res.Failed?.length)
          ctx.log.warn(
            { failed: res.Failed.length },
            'sqs: some deletes failed; those messages will be read again',
          );
      }
    };

    const loop = (async () => {
      const backoff = new Backoff();
      while (!signal.aborted) {
        try {
          url ??= await retryUntil(queueUrl, {
            signal,
            fatal: isFatalAwsError,
            onRetry: (e, waitMs) =>
              ctx.log.warn({ err: (e as Error).message, retryInMs: waitMs }, 'sqs: cannot reach the queue'),
          });
          const res = await client.send(
            new ReceiveMessageCommand({
              QueueUrl: url,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: spec.waitTimeSeconds ?? 3,
              VisibilityTimeout: queueHold.visibilitySeconds,
              MessageAttributeNames: ['All'],
              MessageSystemAttributeNames: ['All'],
            }),
            { abortSignal: signal },
          );
          backoff.reset();
          if (res.Messages?.length) await handleBatch(url, res.Messages);
        } catch (err) {
          if (signal.aborted) break;
          if (isFatalAwsError(err))
            ctx.log.error({ err: clearError(err).message }, 'sqs: request refused; retrying');
          else ctx.log.warn({ err: (err as Error).message }, 'sqs: receive failed; retrying');
          await pause(backoff.take(), signal);
        }
      }
    })();
    ctx.log.info({ queue: spec.queue, region: spec.region }, 'sqs: receiving');
    return {
      async stop() {
        stop.abort();
        await loop;
        client.destroy();
      },
    };
  },
};
