// `azureQueueStorage`: reads an Azure Storage queue (@azure/storage-queue) up to 16 messages at
// a time, with a visibility timeout of 60 s; a message is deleted only after the bus stored its
// event, whose id is the queue's message id (the same when the message becomes visible again
// after a crash, so it is stored once within the bus's duplicates window). While the bus
// refuses, the message is held: its visibility is extended (the dequeue count does not grow)
// and the publish retried with backoff. Messages that can never be published (not JSON with
// jsonBody, not base64 with decodeMessage) are deleted and counted, or left for a dead-letter
// process with `dlq: true`. After an empty read it waits `waitTimeInSeconds` (default 3).
// Wrong credentials or a missing queue fail the start with a clear error; an unreachable
// endpoint is retried with backoff. Azure AD access (`storageAccountName` alone) is not
// supported by this build: use `connectionString`.
import { type DequeuedMessageItem, type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import type { AzureQueueStorageEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { parseJsonText } from '../json.ts';
import { Backoff, pause } from '../retry.ts';

const VISIBILITY_S = 60;
const EXTEND_EVERY_MS = 20_000;
const FATAL = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'QueueNotFound',
  'AuthorizationPermissionMismatch',
  'InvalidAuthenticationInfo',
]);

/** True for storage errors no retry can fix: credentials, rights, a missing queue. */
export function isFatalStorageError(err: unknown): boolean {
  const e = err as { code?: string; statusCode?: number } | undefined;
  return (
    !!e && (FATAL.has(e.code ?? '') || e.statusCode === 401 || e.statusCode === 403 || e.statusCode === 404)
  );
}

type Decoded = { body: unknown } | { error: string };

function decode(spec: AzureQueueStorageEventSource, text: string): Decoded {
  let raw = text;
  if (spec.decodeMessage) {
    if (!/^[A-Za-z0-9+/=\s]*$/.test(text)) return { error: 'not-base64' };
    raw = Buffer.from(text, 'base64').toString('utf8');
  }
  if (!spec.jsonBody) return { body: raw };
  try {
    return { body: parseJsonText(raw) };
  } catch {
    return { error: 'invalid-json' };
  }
}

/** Publishes one message, holding it (visibility extended) while the bus refuses. */
async function publishOne(
  ctx: SourceContext<AzureQueueStorageEventSource>,
  queue: QueueClient,
  m: DequeuedMessageItem,
  signal: AbortSignal,
): Promise<{ popReceipt: string; outcome: 'stored' | 'drop' | 'leave' | 'stopped' }> {
  const spec = ctx.spec;
  const decoded = decode(spec, m.messageText);
  if ('error' in decoded) {
    ctx.processingFailed(decoded.error);
    ctx.log.warn(
      { messageId: m.messageId, reason: decoded.error },
      `azureQueueStorage: message cannot be published; ${spec.dlq ? 'left in the queue' : 'deleted'}`,
    );
    return { popReceipt: m.popReceipt, outcome: spec.dlq ? 'leave' : 'drop' };
  }
  const data = {
    messageID: m.messageId,
    insertionTime: m.insertedOn.toISOString(),
    body: decoded.body,
    ...(spec.metadata && Object.keys(spec.metadata).length ? { metadata: spec.metadata } : {}),
  };
  let popReceipt = m.popReceipt;
  let extendedAt = Date.now();
  const backoff = new Backoff(500, 10_000);
  while (!signal.aborted) {
    try {
      await ctx.emit(data, { id: m.messageId, time: m.insertedOn });
      return { popReceipt, outcome: 'stored' };
    } catch (err) {
      ctx.log.warn(
        { messageId: m.messageId, err: (err as Error).message },
        'azureQueueStorage: event not stored; message held, retrying',
      );
      if (Date.now() - extendedAt > EXTEND_EVERY_MS) {
        const r = await queue
          .updateMessage(m.messageId, popReceipt, undefined, VISIBILITY_S)
          .catch(() => undefined);
        if (r?.popReceipt) popReceipt = r.popReceipt;
        extendedAt = Date.now();
      }
      await pause(backoff.take(), signal);
    }
  }
  return { popReceipt, outcome: 'stopped' };
}

export const adapter: SourceAdapter<AzureQueueStorageEventSource> = {
  type: 'azureQueueStorage',
  exclusive: false,
  async start(ctx) {
    const spec = ctx.spec;
    if (!spec.connectionString) {
      throw new Error(
        'azureQueueStorage: Azure AD access (storageAccountName without connectionString) is not supported by this build; set connectionString',
      );
    }
    const service = QueueServiceClient.fromConnectionString(
      (await ctx.resolveSecret(spec.connectionString)).trim(),
      {
        retryOptions: { maxTries: 2, tryTimeoutInMs: 30_000 },
      },
    );
    const queue = service.getQueueClient(spec.queueName);
    const clear = (err: unknown) =>
      new Error(
        `azureQueueStorage queue ${spec.queueName}: ${(err as { code?: string }).code ?? ''} ${(err as Error).message.split('\n')[0]}`,
      );
    try {
      await queue.getProperties();
    } catch (err) {
      if (isFatalStorageError(err)) throw clear(err);
      ctx.log.warn(
        { err: (err as Error).message },
        'azureQueueStorage: endpoint unreachable; retrying in the background',
      );
    }
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);
    const idleMs = (spec.waitTimeInSeconds ?? 3) * 1000;

    const loop = (async () => {
      const backoff = new Backoff();
      while (!signal.aborted) {
        try {
          const res = await queue.receiveMessages({
            numberOfMessages: 16,
            visibilityTimeout: VISIBILITY_S,
            abortSignal: signal,
          });
          backoff.reset();
          if (!res.receivedMessageItems.length) {
            await pause(idleMs, signal);
            continue;
          }
          for (const m of res.receivedMessageItems) {
            const { popReceipt, outcome } = await publishOne(ctx, queue, m, signal);
            if (outcome === 'stopped') break;
            if (outcome !== 'leave') await queue.deleteMessage(m.messageId, popReceipt);
          }
        } catch (err) {
          if (signal.aborted) break;
          const wait = backoff.take();
          if (isFatalStorageError(err))
            ctx.log.error({ err: clear(err).message, retryInMs: wait }, 'azureQueueStorage: request refused');
          else
            ctx.log.warn(
              { err: (err as Error).message, retryInMs: wait },
              'azureQueueStorage: receive failed; retrying',
            );
          await pause(wait, signal);
        }
      }
    })();
    ctx.log.info({ queue: spec.queueName }, 'azureQueueStorage: receiving');
    return {
      async stop() {
        stop.abort();
        await loop;
      },
    };
  },
};
