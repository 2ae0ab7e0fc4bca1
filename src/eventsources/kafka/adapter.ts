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
// clear error; an unreachable broker is retried with backoff, in the background.
import { AssignerProtocol, type Consumer, Kafka, type KafkaMessage, type PartitionAssigner } from 'kafkajs';
import type { KafkaEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { parseJsonText } from '../json.ts';
import { Backoff, pause, retryUntil } from '../retry.ts';
import { isFatalKafkaError, kafkaConfig } from './client.ts';

const COMMIT_EVERY = 100;
const COMMIT_INTERVAL_MS = 1_000;

/** The upstream event payload (KafkaEventData), plus `offset`. */
export function kafkaEventData(
  topic: string,
  partition: number,
  m: KafkaMessage,
  body: unknown,
  metadata: Record<string, string> | undefined,
): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v === undefined) continue;
    headers[k] = (Array.isArray(v) ? v : [v]).map((x) => x.toString()).join(',');
  }
  return {
    topic,
    key: m.key?.toString('utf8') ?? '',
    partition,
    offset: Number(m.offset),
    timestamp: new Date(Number(m.timestamp)).toISOString(),
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
    const consumer: Consumer = kafka.consumer({
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
    consumer.on(consumer.events.CRASH, (e) => {
      const err = e.payload.error;
      if (isFatalKafkaError(err))
        ctx.log.error({ err: err.message }, 'kafka: consumer stopped: cannot recover');
      else
        ctx.log.warn({ err: err.message, restart: e.payload.restart }, 'kafka: consumer crashed; restarting');
    });
    const minGapMs = spec.limitEventsPerSecond ? 1000 / spec.limitEventsPerSecond : 0;
    let lastEmit = 0;

    /** Publishes one message, holding the partition while the bus refuses. False when stopping. */
    const publish = async (
      topic: string,
      partition: number,
      m: KafkaMessage,
      onHold: () => Promise<void>,
    ) => {
      const decoded = decodeBody(ctx, m);
      if (!decoded) return true;
      const data = kafkaEventData(topic, partition, m, decoded.body, spec.metadata);
      const backoff = new Backoff(500, 10_000);
      for (;;) {
        if (minGapMs) await pause(Math.max(0, lastEmit + minGapMs - Date.now()), signal);
        if (signal.aborted) return false;
        try {
          lastEmit = Date.now();
          await ctx.emit(data, {
            id: `${topic}:${partition}:${m.offset}`,
            time: new Date(Number(m.timestamp)),
          });
          return true;
        } catch (err) {
          ctx.log.warn(
            { topic, partition, offset: m.offset, err: (err as Error).message },
            'kafka: event not stored; partition held, retrying',
          );
          await onHold();
          await pause(backoff.take(), signal);
        }
      }
    };

    const run = () =>
      consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 4,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, heartbeat, isRunning, isStale }) => {
          const { topic, partition } = batch;
          let done: string | undefined;
          let uncommitted = 0;
          let lastCommit = Date.now();
          const commit = async () => {
            if (done === undefined || uncommitted === 0) return;
            await consumer.commitOffsets([{ topic, partition, offset: (BigInt(done) + 1n).toString() }]);
            uncommitted = 0;
            lastCommit = Date.now();
          };
          for (const m of batch.messages) {
            if (!isRunning() || isStale() || signal.aborted) break;
            // While held, what is done so far is committed and the group kept alive.
            const hold = async () => {
              await commit();
              await heartbeat();
            };
            if (!(await publish(topic, partition, m, hold))) break;
            done = m.offset;
            uncommitted++;
            if (uncommitted >= COMMIT_EVERY || Date.now() - lastCommit >= COMMIT_INTERVAL_MS) {
              await commit();
              await heartbeat();
            }
          }
          await commit();
        },
      });

    const connect = async () => {
      await consumer.connect();
      await consumer.subscribe({ topic: spec.topic, fromBeginning: group?.oldest ?? false });
      await run();
    };
    const first = connect().catch(async (err: unknown) => {
      await consumer.disconnect().catch(() => {});
      throw err;
    });
    try {
      await first;
    } catch (err) {
      if (isFatalKafkaError(err)) {
        throw new Error(
          `kafka ${spec.url}: ${(err as Error).message} (check sasl/tls and the user's rights)`,
        );
      }
      ctx.log.warn({ err: (err as Error).message }, 'kafka: cannot connect; retrying in the background');
      void retryUntil(connect, {
        signal,
        fatal: isFatalKafkaError,
        onRetry: (e, waitMs) =>
          ctx.log.warn({ err: (e as Error).message, retryInMs: waitMs }, 'kafka: cannot connect'),
      }).catch((e: unknown) => {
        if (!signal.aborted) ctx.log.error({ err: (e as Error).message }, 'kafka: giving up: cannot recover');
      });
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
