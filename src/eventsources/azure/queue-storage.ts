// `azureQueueStorage`: reads an Azure Storage queue (@azure/storage-queue) up to 16 messages at
// a time, with a visibility timeout of 60 s; a message is deleted only after the bus stored its
// event, whose id is the queue's message id (the same when the message becomes visible again
// after a crash, so it is stored once within the bus's duplicates window). While the bus
// refuses, every message of the received batch not yet deleted is held: its visibility is
// extended (the dequeue count does not grow, no other consumer gets it) and the publish retried
// with backoff. Messages that can never be published (not JSON with jsonBody, not base64 with
// decodeMessage, refused for good by the bus as too large) are deleted and counted, or left
// for a dead-letter process with `dlq: true`. After an empty read it waits `waitTimeInSeconds` (default 3).
// Wrong credentials or a missing queue fail the start with a clear error; an unreachable
// endpoint is retried with backoff. Azure AD access (`storageAccountName` alone) is not
// supported by this build: use `connectionString`.
import { type DequeuedMessageItem, type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import type { AzureQueueStorageEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { validDate } from '../fields.ts';
import { parseJsonText } from '../json.ts';
import { Backoff, pause, queueHold, reportRefusal, storeHeld } from '../retry.ts';

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

/**
 * The messages of one receive not yet deleted, kept invisible: every `queueHold.extendEveryMs`
 * each one's visibility is extended (the newest popReceipt kept). Updates and deletes of one
 * batch run one at a time, so a delete always uses the current popReceipt.
 */
class HeldBatch {
  private readonly receipts = new Map<string, string>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly queue: QueueClient;

  constructor(queue: QueueClient, messages: DequeuedMessageItem[]) {
    this.queue = queue;
    for (const m of messages) this.receipts.set(m.messageId, m.popReceipt);
    this.timer = setInterval(() => void this.serial(() => this.extendAll()), queueHold.extendEveryMs);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async extendAll(): Promise<void> {
    for (const [id, receipt] of this.receipts) {
      const r = await this.queue
        .updateMessage(id, receipt, undefined, queueHold.visibilitySeconds)
        .catch(() => undefined);
      if (r?.popReceipt && this.receipts.has(id)) this.receipts.set(id, r.popReceipt);
    }
  }

  /** Stops holding `id`; deletes it from the queue when `remove`. Rejects when the delete fails. */
  release(id: string, remove: boolean): Promise<void> {
    return this.serial(async () => {
      const receipt = this.receipts.get(id);
      this.receipts.delete(id);
      if (remove && receipt) await this.queue.deleteMessage(id, receipt);
    });
  }

  close(): void {
    clearInterval(this.timer);
  }
}

type Outcome = 'stored' | 'drop' | 'leave' | 'stopped';

/** Publishes one message, retrying while the bus refuses (the batch keeps it invisible). */
async function publishOne(
  ctx: SourceContext<AzureQueueStorageEventSource>,
  m: DequeuedMessageItem,
  signal: AbortSignal,
): Promise<Outcome> {
  const spec = ctx.spec;
  const unpublishable = spec.dlq ? 'left in the queue' : 'deleted';
  const decoded = decode(spec, m.messageText);
  if ('error' in decoded) {
    ctx.processingFailed(decoded.error);
    ctx.log.warn(
      { messageId: m.messageId, reason: decoded.error },
      `azureQueueStorage: message cannot be published; ${unpublishable}`,
    );
    return spec.dlq ? 'leave' : 'drop';
  }
  const inserted = validDate(m.insertedOn);
  const data = {
    messageID: m.messageId,
    insertionTime: (inserted ?? new Date()).toISOString(),
    body: decoded.body,
    ...(spec.metadata && Object.keys(spec.metadata).length ? { metadata: spec.metadata } : {}),
  };
  const r = await storeHeld(
    () => ctx.emit(data, { id: m.messageId, ...(inserted ? { time: inserted } : {}) }),
    {
      signal,
      onHold: (err, waitMs) =>
        ctx.log.warn(
          { messageId: m.messageId, err: (err as Error).message, retryInMs: waitMs },
          'azureQueueStorage: event not stored; message held, retrying',
        ),
    },
  );
  if (r.outcome !== 'refused') return r.outcome;
  reportRefusal(ctx, { messageId: m.messageId }, r.err, unpublishable);
  return spec.dlq ? 'leave' : 'drop';
}

/** Publishes a received batch in order, deleting each message once stored (or dropped). */
async function handleBatch(
  ctx: SourceContext<AzureQueueStorageEventSource>,
  queue: QueueClient,
  messages: DequeuedMessageItem[],
  signal: AbortSignal,
): Promise<void> {
  const held = new HeldBatch(queue, messages);
  try {
    for (const m of messages) {
      const outcome = await publishOne(ctx, m, signal);
      if (outcome === 'stopped') break;
      await held
        .release(m.messageId, outcome !== 'leave')
        .catch((err: unknown) =>
          ctx.log.warn(
            { messageId: m.messageId, err: (err as Error).message },
            'azureQueueStorage: delete failed; the message will be read again (same event id)',
          ),
        );
    }
  } finally {
    held.close();
  }
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
            visibilityTimeout: queueHold.visibilitySeconds,
            abortSignal: signal,
          });
          backoff.reset();
          if (!res.receivedMessageItems.length) {
            await pause(idleMs, signal);
            continue;
          }
          await handleBatch(ctx, queue, res.receivedMessageItems, signal);
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
