// Durable pull consumers, one per (Sensor, dependency): explicit acks, bounded ack-pending,
// explicit ack_wait and max_deliver, batched pulls, a heartbeat for long work, and clean-up of
// consumers whose dependency is gone.
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';

const ms2ns = (ms: number) => Math.round(ms * 1e6);

export interface ConsumerSettings {
  stream: string;
  durable: string;
  filterSubject: string;
  /** Redeliver a message not acked within this long (default 30 s). */
  ackWaitMs?: number;
  /** Stop redelivering after this many deliveries (default -1: never; sluice dead-letters itself). */
  maxDeliver?: number;
  /** Most messages delivered and not yet acked (default 1000). */
  maxAckPending?: number;
  /** Where a new consumer starts: "new" events only (default) or "all" retained ones. */
  deliver?: 'new' | 'all';
}

/** Creates the consumer, or updates its mutable settings when it exists. */
export async function ensureConsumer(jsm: JetStreamManager, s: ConsumerSettings): Promise<void> {
  const config = {
    durable_name: s.durable,
    ack_policy: AckPolicy.Explicit,
    filter_subject: s.filterSubject,
    ack_wait: ms2ns(s.ackWaitMs ?? 30_000),
    max_deliver: s.maxDeliver ?? -1,
    max_ack_pending: s.maxAckPending ?? 1000,
    deliver_policy: s.deliver === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
  };
  try {
    const info = await jsm.consumers.info(s.stream, s.durable);
    const c = info.config;
    if (
      c.ack_wait !== config.ack_wait ||
      c.max_deliver !== config.max_deliver ||
      c.max_ack_pending !== config.max_ack_pending ||
      c.filter_subject !== config.filter_subject
    ) {
      await jsm.consumers.update(s.stream, s.durable, {
        ack_wait: config.ack_wait,
        max_deliver: config.max_deliver,
        max_ack_pending: config.max_ack_pending,
        filter_subject: config.filter_subject,
      });
    }
  } catch (err) {
    if (!/not found/i.test((err as Error).message)) throw err;
    await jsm.consumers.add(s.stream, config);
  }
}

/** Deletes consumers on `stream` accepted by `owned` but not listed in `keep`. */
export async function deleteConsumers(
  jsm: JetStreamManager,
  stream: string,
  owned: (name: string) => boolean,
  keep: ReadonlySet<string>,
): Promise<string[]> {
  const removed: string[] = [];
  for await (const ci of jsm.consumers.list(stream)) {
    const name = ci.name;
    if (owned(name) && !keep.has(name)) {
      await jsm.consumers.delete(stream, name);
      removed.push(name);
    }
  }
  return removed;
}

/**
 * Runs `work` while telling the server every `everyMs` that the message is still being
 * processed, so a slow trigger does not cause a redelivery.
 */
export async function working<T>(msg: JsMsg, work: () => Promise<T>, everyMs: number): Promise<T> {
  const timer = setInterval(() => msg.working(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

export interface ConsumeOptions {
  /** Messages pulled per batch (default 256). */
  batch?: number;
  /** Messages handled at once (default 64). */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * Pulls from a durable consumer and runs `handle` for each message, at most `concurrency` at a
 * time. `handle` settles the message itself (ack, nak with delay, term). Resolves when the signal
 * aborts, after in-flight handlers finish.
 */
export async function consume(
  js: JetStreamClient,
  stream: string,
  durable: string,
  handle: (msg: JsMsg) => Promise<void>,
  opts: ConsumeOptions = {},
): Promise<void> {
  const consumer = await js.consumers.get(stream, durable);
  const limit = opts.concurrency ?? 64;
  let active = 0;
  const idle: Array<() => void> = [];
  const done = new Set<Promise<void>>();
  let messages: ConsumerMessages | undefined;
  const stop = () => messages?.stop();
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    messages = await consumer.consume({ max_messages: opts.batch ?? 256 });
    if (opts.signal?.aborted) messages.stop();
    for await (const msg of messages) {
      if (active >= limit) await new Promise<void>((r) => idle.push(r));
      active++;
      const p = handle(msg)
        .catch(() => msg.nak())
        .finally(() => {
          active--;
          done.delete(p);
          idle.shift()?.();
        });
      done.add(p);
    }
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    await Promise.allSettled([...done]);
  }
}
