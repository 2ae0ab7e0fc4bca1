// `kafka`: consumes a topic as a consumer group (kafkajs), at least once: offsets are committed
// only after the bus stored the events before them (group-committed: every 100 events, every
// second and at the end of each fetched batch), so a crash re-reads at most what was not
// committed, and the event id "<topic>:<partition>:<offset>" makes that re-read one stored event
// (within the bus's duplicates window). While the bus refuses, the partition is held (no later
// message of it is published before the refused one) and the group heartbeat is kept.
// `partition` without `consumerGroup` reads that one partition, through a group of its own
// ("sluice-<namespace>-<eventsource>-<event>") whose assigner gives only that partition, so its
// offset survives restarts too (upstream starts again at the newest message). Replicas share the
// partitions through the group, so every replica runs. Bad credentials fail the start with a
// clear error; an unreachable broker is retried with backoff, in the background. A message the
// bus refuses for good (too large, cannot be encoded) is counted, logged with its
// topic/partition/offset and committed past, so it never holds its partition; a record whose
// fields cannot be converted (an out-of-range timestamp) is published with a fallback (the
// receive time). A consumer that kafkajs stops without restarting (a non-retriable crash) is
// replaced by a new one, with backoff, unless the error is one no retry can fix.
import {
  AssignerProtocol,
  type Consumer,
  type EachBatchHandler,
  Kafka,
  type KafkaMessage,
  type PartitionAssigner,
} from 'kafkajs';
import type { KafkaEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { dateFromMs } from '../fields.ts';
import { parseJsonText } from '../json.ts';
import { Backoff, pause, reportRefusal, retryUntil, storeHeld } from '../retry.ts';
import { isFatalKafkaError, kafkaConfig } from './client.ts';

const COMMIT_EVERY = 100;
const COMMIT_INTERVAL_MS = 1_000;

/**
 * The upstream event payload (KafkaEventData), plus `offset`. Total: a timestamp outside what a
 * Date can hold becomes `receivedAt` (the caller logs it); never throws for a record's fields.
 */
export function kafkaEventData(
  topic: string,
  partition: number,
  m: KafkaMessage,
  body: unknown,
  metadata: Record<string, string> | undefined,
  receivedAt: Date = new Date(),
): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v === undefined || v === null) continue;
    headers[k] = (Array.isArray(v) ? v : [v]).map((x) => String(x ?? '')).join(',');
  }
  return {
    topic,
    key: m.key?.toString('utf8') ?? '',
    partition,
    offset: Number(m.offset),
    timestamp: (dateFromMs(m.timestamp) ?? receivedAt).toISOString(),
    headers,
    body,
    ...(metadata && Object.keys(metadata).length ? { metadata } : {}),
  };
}

/** An assigner that hands `partition` of every subscribed topic to the first member only. */
function onePartition(partition: number): PartitionAssigner {
  return () => ({
    name: `sluice-partition-${partition}`,
    version: 1,
    async assign({ members, topics }) {
      const sorted = [...members].sort((a, b) => a.memberId.localeCompare(b.memberId));
      return sorted.map((m, i) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: i === 0 ? Object.fromEntries(topics.map((t) => [t, [partition]])) : {},
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol: ({ topics }) => ({
      name: `sluice-partition-${partition}`,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
    }),
  });
}

function decodeBody(ctx: SourceContext<KafkaEventSource>, m: KafkaMessage): { body: unknown } | undefined {
  const text = m.value?.toString('utf8') ?? '';
  if (!ctx.spec.jsonBody) return { body: text };
  try {
    return { body: parseJsonText(text) };
  } catch {
    ctx.processingFailed('invalid-json');
    ctx.log.warn({ offset: m.offset }, 'kafka: message is not JSON although jsonBody is set; skipped');
    return undefined;
  }
}

function checkSpec(spec: KafkaEventSource): void {
  if (spec.schemaRegistry) throw new Error('kafka: schemaRegistry (Avro) is not supported by this build');
  if (spec.awsMskIamAuth) throw new Error('kafka: awsMskIamAuth is not supported by this build');
  if (!spec.consumerGroup && !/^\d+$/.test(spec.partition ?? '')) {
    throw new Error(`kafka: partition ${JSON.stringify(spec.partition)} is not a partition number`);
  }
}

type Held = () => Promise<void>;

/** What to publish for one record, or undefined when it is skipped (counted and logged). */
function recordEvent(
  ctx: SourceContext<KafkaEventSource>,
  topic: string,
  partition: number,
  m: KafkaMessage,
) {
  try {
    const decoded = decodeBody(ctx, m);
    if (!decoded) return undefined;
    const time = dateFromMs(m.timestamp);
    if (!time)
      ctx.log.warn(
        { topic, partition, offset: m.offset, timestamp: m.timestamp },
        'kafka: record timestamp is not a valid time; using the receive time',
      );
    const data = kafkaEventData(topic, partition, m, decoded.body, ctx.spec.metadata);
    return { data, id: `${topic}:${partition}:${m.offset}`, ...(time ? { time } : {}) };
  } catch (err) {
    ctx.processingFailed('unreadable');
    ctx.log.error(
      { topic, partition, offset: m.offset, err: (err as Error).message },
      'kafka: record cannot be read; committed past it',
    );
    return undefined;
  }
}

/** Publishes one record, holding the partition while the bus refuses. False when stopping. */
async function publishRecord(
  ctx: SourceContext<KafkaEventSource>,
  signal: AbortSignal,
  gate: () => Promise<void>,
  at: { topic: string; partition: number; m: KafkaMessage },
  onHold: Held,
): Promise<boolean> {
  const { topic, partition, m } = at;
  const ev = recordEvent(ctx, topic, partition, m);
  if (!ev) return true;
  const r = await storeHeld(() => ctx.emit(ev.data, { id: ev.id, ...(ev.time ? { time: ev.time } : {}) }), {
    signal,
    before: gate,
    onHold: async (err, waitMs) => {
      ctx.log.warn(
        { topic, partition, offset: m.offset, err: (err as Error).message, retryInMs: waitMs },
        'kafka: event not stored; partition held, retrying',
      );
      await onHold();
    },
  });
  if (r.outcome === 'refused')
    reportRefusal(
      ctx,
      { topic, partition, offset: m.offset, bytes: m.value?.length ?? 0 },
      r.err,
      'committed past it',
    );
  return r.outcome !== 'stopped';
}

/** The eachBatch handler: publishes in order, group-commits after the PubAcks. */
function batchHandler(
  ctx: SourceContext<KafkaEventSource>,
  signal: AbortSignal,
  consumer: () => Consumer,
): EachBatchHandler {
  const minGapMs = ctx.spec.limitEventsPerSecond ? 1000 / ctx.spec.limitEventsPerSecond : 0;
  let lastEmit = 0;
  const gate = async () => {
    if (minGapMs) await pause(Math.max(0, lastEmit + minGapMs - Date.now()), signal);
    lastEmit = Date.now();
  };
  return async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
    const { topic, partition } = batch;
    let done: string | undefined;
    let uncommitted = 0;
    let lastCommit = Date.now();
    const commit = async () => {
      if (done === undefined || uncommitted === 0) return;
      await consumer().commitOffsets([{ topic, partition, offset: (BigInt(done) + 1n).toString() }]);
      uncommitted = 0;
      lastCommit = Date.now();
    };
    // While held, what is done so far is committed and the group kept alive.
    const hold = async () => {
      await commit();
      await heartbeat();
    };
    for (const m of batch.messages) {
      if (!isRunning() || isStale() || signal.aborted) break;
      if (!(await publishRecord(ctx, signal, gate, { topic, partition, m }, hold))) break;
      done = m.offset;
      // Resolved: the next fetch starts after it (else kafkajs reads the batch again).
      resolveOffset(m.offset);
      uncommitted++;
      if (uncommitted >= COMMIT_EVERY || Date.now() - lastCommit >= COMMIT_INTERVAL_MS) await hold();
    }
    await commit();
  };
}

export const adapter: SourceAdapter<KafkaEventSource> = {
  type: 'kafka',
  exclusive: false,
  async start(ctx) {
    const spec = ctx.spec;
    checkSpec(spec);
    if (spec.config) ctx.log.warn('kafka: `config` (Sarama settings) is accepted and not used');
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);
    const group = spec.consumerGroup;
    const kafka = new Kafka(
      await kafkaConfig(spec, `sluice-${ctx.namespace}-${ctx.eventSourceName}`, ctx.resolveSecret, ctx.log),
    );
    const newConsumer = (): Consumer =>
      kafka.consumer({
        groupId: group?.groupName ?? `sluice-${ctx.namespace}-${ctx.eventSourceName}-${ctx.eventName}`,
        ...(group ? {} : { partitionAssigners: [onePartition(Number(spec.partition))] }),
        sessionTimeout: 10_000,
        heartbeatInterval: 3_000,
        maxBytesPerPartition: 1_048_576,
        retry: {
          initialRetryTime: 300,
          maxRetryTime: 10_000,
          retries: 8,
          restartOnFailure: async (err) => !isFatalKafkaError(err) && !signal.aborted,
        },
      });
    let consumer = newConsumer();
    const eachBatch = batchHandler(ctx, signal, () => consumer);
    const connect = async () => {
      await consumer.connect();
      await consumer.subscribe({ topic: spec.topic, fromBeginning: group?.oldest ?? false });
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 4,
        eachBatchAutoResolve: false,
        eachBatch,
      });
    };
    const retryConnect = () =>
      retryUntil(connect, {
        signal,
        fatal: isFatalKafkaError,
        onRetry: (e, waitMs) => {
          ctx.processingFailed('connection');
          ctx.degraded(`kafka: cannot connect (${(e as Error).message}); retrying`);
          ctx.log.warn({ err: (e as Error).message, retryInMs: waitMs }, 'kafka: cannot connect');
        },
      }).then(
        () => ctx.degraded(undefined),
        (e: unknown) => {
          if (signal.aborted) return;
          ctx.degraded(`kafka: stopped: ${(e as Error).message}`);
          ctx.log.error({ err: (e as Error).message }, 'kafka: giving up: cannot recover');
        },
      );
    const restarts = new Backoff(1_000, 60_000);
    const watchCrashes = (c: Consumer) =>
      c.on(c.events.CRASH, (e) => {
        const err = e.payload.error;
        if (signal.aborted) return;
        if (isFatalKafkaError(err)) {
          ctx.degraded(`kafka: consumer stopped: ${err.message} (check sasl/tls and rights)`);
          ctx.log.error(
            { err: err.message },
            'kafka: consumer stopped: cannot recover (check sasl/tls and rights)',
          );
          return;
        }
        if (e.payload.restart) {
          ctx.log.warn({ err: err.message }, 'kafka: consumer crashed; kafkajs restarts it');
          return;
        }
        // kafkajs gave up on this consumer: replace it (same group, so committed offsets hold).
        const wait = restarts.take();
        ctx.processingFailed('consumer-crash');
        ctx.degraded(`kafka: consumer stopped (${err.message}); starting a new one in ${wait} ms`);
        ctx.log.error({ err: err.message, retryInMs: wait }, 'kafka: consumer stopped; starting a new one');
        void (async () => {
          await c.disconnect().catch(() => {});
          await pause(wait, signal);
          if (signal.aborted) return;
          consumer = newConsumer();
          watchCrashes(consumer);
          await retryConnect();
        })();
      });
    watchCrashes(consumer);
    try {
      await connect();
    } catch (err) {
      await consumer.disconnect().catch(() => {});
      if (isFatalKafkaError(err)) {
        throw new Error(
          `kafka ${spec.url}: ${(err as Error).message} (check sasl/tls and the user's rights)`,
        );
      }
      ctx.log.warn({ err: (err as Error).message }, 'kafka: cannot connect; retrying in the background');
      ctx.degraded(`kafka: cannot connect (${(err as Error).message}); retrying`);
      void retryConnect();
    }
    ctx.log.info({ url: spec.url, topic: spec.topic, group: group?.groupName }, 'kafka: consuming');
    return {
      async stop() {
        stop.abort();
        await consumer.disconnect().catch(() => {});
      },
    };
  },
};
