// `kafka`: produces the JSON payload built from `payload` to `topic` with kafkajs, as upstream
// does (key = `partitioningKey`, `headers` and `secureHeaders` as record headers), plus the
// idempotency key in the `Idempotency-Key` header and `traceparent`. The producer is idempotent
// (acks from all in-sync replicas, the broker drops a resend of the same batch), so the client's
// own retries never write twice; one effect per idempotency key in this process (RecentKeys), and
// across restarts the Sensor's processed set. A send that fails ambiguously (timeout) may still
// have been written: consumers can drop a repeat by the Idempotency-Key header. Type-level
// `parameters` apply to this spec (e.g. `dest: partitioningKey`). One producer per brokers + TLS +
// SASL, kept between calls; close() disconnects them.
import { CompressionTypes, Kafka, type Producer } from 'kafkajs';
import type { KafkaTrigger } from '../../api/sensor.ts';
import { isFatalKafkaError, kafkaConfig } from '../../eventsources/kafka/client.ts';
import { RecentKeys } from './recent-keys.ts';
import { type TriggerContext, TriggerError, type TriggerRunner } from './trigger.ts';

type Spec = import('zod').infer<typeof KafkaTrigger>;

const SEND_TIMEOUT_MS = 30_000;

async function recordHeaders(spec: Spec, ctx: TriggerContext): Promise<Record<string, string>> {
  const headers: Record<string, string> = { ...(spec.headers ?? {}) };
  for (const h of spec.secureHeaders ?? []) {
    const from = h.valueFrom;
    if (from?.secretKeyRef) headers[h.name] = (await ctx.resolveSecret(from.secretKeyRef)).trim();
    else if (from?.configMapKeyRef)
      headers[h.name] = (await ctx.resolveConfigMap(from.configMapKeyRef)).trim();
    else
      throw new TriggerError(
        'Misconfigured',
        `secure header ${h.name} names neither a Secret nor a ConfigMap key`,
      );
  }
  headers['Idempotency-Key'] = ctx.idempotencyKey;
  if (ctx.traceparent) headers.traceparent = ctx.traceparent;
  return headers;
}

function classify(err: unknown, what: string): TriggerError {
  if (err instanceof TriggerError) return err;
  const e = err as Error & { type?: string };
  if (isFatalKafkaError(err))
    return new TriggerError('Misconfigured', `${what}: ${e.message}`, { cause: err });
  if (e.type === 'MESSAGE_TOO_LARGE' || e.type === 'INVALID_RECORD')
    return new TriggerError('Rejected', `${what}: ${e.message}`, { cause: err });
  return new TriggerError('Transient', `${what}: ${e.message}`, { cause: err });
}

function withDeadline<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = () => reject(new TriggerError('Transient', `${what}: aborted`));
    if (signal.aborted) return fail();
    signal.addEventListener('abort', fail, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', fail));
  });
}

export function kafkaTrigger(): TriggerRunner<Spec> {
  const producers = new Map<string, Promise<Producer>>();
  const done = new RecentKeys();

  const producerFor = (spec: Spec, ctx: TriggerContext, idempotent: boolean): Promise<Producer> => {
    const id = JSON.stringify([spec.url, spec.tls ?? null, spec.sasl ?? null, idempotent]);
    let p = producers.get(id);
    if (!p) {
      p = (async () => {
        const kafka = new Kafka(
          await kafkaConfig(
            spec,
            `sluice-sensor-${ctx.namespace}-${ctx.sensorName}`,
            ctx.resolveSecret,
            ctx.log,
          ),
        );
        const producer = kafka.producer(
          idempotent ? { idempotent: true, maxInFlightRequests: 1 } : { allowAutoTopicCreation: false },
        );
        await producer.connect();
        return producer;
      })();
      producers.set(id, p);
      p.catch(() => {
        if (producers.get(id) === p) producers.delete(id);
      });
    }
    return p;
  };

  return {
    type: 'kafka',
    async fire(template, ctx) {
      const spec = template.parameters?.length
        ? ctx.applyParameters(template, template.parameters)
        : template;
      if (spec.schemaRegistry)
        throw new TriggerError('Misconfigured', 'kafka: schemaRegistry (Avro) is not supported');
      const dedupe = `${spec.url}\u0000${spec.topic}\u0000${ctx.idempotencyKey}`;
      if (done.has(dedupe)) return { detail: `already produced to ${spec.topic} (same idempotency key)` };
      const value = JSON.stringify(ctx.buildPayload(spec.payload) ?? {});
      const acks = spec.requiredAcks ?? -1;
      const what = `kafka produce to ${spec.topic}`;
      try {
        const producer = await withDeadline(
          producerFor(spec, ctx, acks === -1),
          ctx.signal,
          `kafka ${spec.url}`,
        );
        const [meta] = await withDeadline(
          producer.send({
            topic: spec.topic,
            acks,
            timeout: SEND_TIMEOUT_MS,
            ...(spec.compress ? { compression: CompressionTypes.GZIP } : {}),
            messages: [
              {
                value,
                headers: await recordHeaders(spec, ctx),
                ...(spec.partitioningKey !== undefined ? { key: spec.partitioningKey } : {}),
              },
            ],
          }),
          ctx.signal,
          what,
        );
        done.set(dedupe, true);
        return { detail: `produced to ${spec.topic}[${meta?.partition}] at offset ${meta?.baseOffset}` };
      } catch (err) {
        throw classify(err, what);
      }
    },
    async close() {
      const all = [...producers.values()];
      producers.clear();
      await Promise.allSettled(all.map(async (p) => (await p).disconnect()));
    },
  };
}
