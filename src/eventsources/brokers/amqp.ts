// `amqp` (e.g. RabbitMQ): declares the exchange and queue as configured, binds them with the
// routing key, and consumes with manual acknowledgements: a message is acked only after the bus
// stored its event, and nacked back to the queue (after a pause) when the bus cannot take it, so
// it is delivered again. `consume.autoAck: true` keeps upstream's at-most-once behaviour. The event
// id is the message's messageId property when the publisher set one (a redelivered or resent
// message is then stored once). Consumers of one queue share its messages, so every replica runs.
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import type { AMQPEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { parseJsonRaw } from '../json.ts';
import { isDefiniteRefusal, reportRefusal } from '../retry.ts';

const REQUEUE_PAUSE_MS = 1000;

export const adapter: SourceAdapter<AMQPEventSource> = {
  type: 'amqp',
  exclusive: false,
  async start(ctx) {
    const spec = ctx.spec;
    let url = spec.url ?? (spec.urlSecret ? (await ctx.resolveSecret(spec.urlSecret)).trim() : '');
    if (!url) throw new Error('amqp: set url or urlSecret');
    if (spec.auth?.username || spec.auth?.password) {
      const u = new URL(url);
      if (spec.auth.username)
        u.username = encodeURIComponent((await ctx.resolveSecret(spec.auth.username)).trim());
      if (spec.auth.password)
        u.password = encodeURIComponent((await ctx.resolveSecret(spec.auth.password)).trim());
      url = u.toString();
    }
    const tls = spec.tls;
    const socketOptions = {
      ...(tls?.caCertSecret ? { ca: [await ctx.resolveSecret(tls.caCertSecret)] } : {}),
      ...(tls?.clientCertSecret ? { cert: await ctx.resolveSecret(tls.clientCertSecret) } : {}),
      ...(tls?.clientKeySecret ? { key: await ctx.resolveSecret(tls.clientKeySecret) } : {}),
      ...(tls?.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
    };
    const autoAck = spec.consume?.autoAck === true;
    let conn: ChannelModel | undefined;
    let channel: Channel | undefined;
    let stopping = false;
    let chain: Promise<void> = Promise.resolve();

    const onMessage = (msg: ConsumeMessage | null) => {
      if (!msg) return; // consumer cancelled by the broker; reconnect handles it
      chain = chain.then(async () => {
        const ch = channel;
        let body: unknown = msg.content.toString('utf8');
        if (spec.jsonBody) {
          try {
            body = parseJsonRaw(body as string);
          } catch {
            ctx.processingFailed('invalid-json');
            ctx.log.warn(
              { routingKey: msg.fields.routingKey },
              'amqp: message is not JSON although jsonBody is set; dropped',
            );
            if (!autoAck) ch?.ack(msg);
            return;
          }
        }
        const p = msg.properties;
        const data = {
          contentType: p.contentType,
          contentEncoding: p.contentEncoding,
          deliveryMode: p.deliveryMode,
          priority: p.priority,
          correlationId: p.correlationId,
          replyTo: p.replyTo,
          expiration: p.expiration,
          messageId: p.messageId,
          timestamp: p.timestamp,
          type: p.type,
          appId: p.appId,
          exchange: msg.fields.exchange,
          routingKey: msg.fields.routingKey,
          headers: p.headers,
          body,
          ...(spec.metadata ? { metadata: spec.metadata } : {}),
        };
        try {
          await ctx.emit(data, p.messageId ? { id: String(p.messageId) } : {});
          if (!autoAck) ch?.ack(msg);
        } catch (err) {
          if (isDefiniteRefusal(err)) {
            // Requeued it would come back for ever: rejected without requeue, the queue's
            // dead-letter exchange (if any) takes it.
            reportRefusal(ctx, { routingKey: msg.fields.routingKey }, err, 'rejected (dead-letter exchange)');
            if (!autoAck) ch?.nack(msg, false, false);
            return;
          }
          ctx.log.warn(
            { routingKey: msg.fields.routingKey, err: (err as Error).message },
            'amqp: event not stored; message returned to the queue',
          );
          if (!autoAck) {
            await new Promise((r) => setTimeout(r, REQUEUE_PAUSE_MS));
            ch?.nack(msg, false, true);
          }
        }
      });
    };

    const connect = async (): Promise<void> => {
      conn = await amqp.connect(url, socketOptions);
      channel = await conn.createChannel();
      const ex = spec.exchangeDeclare;
      await channel.assertExchange(spec.exchangeName, spec.exchangeType, {
        durable: ex?.durable ?? false,
        autoDelete: ex?.autoDelete ?? false,
        internal: ex?.internal ?? false,
      });
      const q = spec.queueDeclare;
      const queue = await channel.assertQueue(q?.name ?? '', {
        durable: q?.durable ?? false,
        autoDelete: q?.autoDelete ?? false,
        exclusive: q?.exclusive ?? false,
        ...(q?.arguments ? { arguments: JSON.parse(q.arguments) as Record<string, unknown> } : {}),
      });
      await channel.bindQueue(queue.queue, spec.exchangeName, spec.routingKey);
      // Bounded prefetch: unacked messages beyond it stay in the broker (backpressure).
      await channel.prefetch(64);
      await channel.consume(queue.queue, onMessage, {
        noAck: autoAck,
        exclusive: spec.consume?.exclusive ?? false,
        ...(spec.consume?.consumerTag ? { consumerTag: spec.consume.consumerTag } : {}),
      });
      conn.on('close', () => {
        if (stopping) return;
        ctx.log.warn('amqp: connection closed; reconnecting');
        void reconnect();
      });
      conn.on('error', (err: Error) => ctx.log.warn({ err: err.message }, 'amqp: connection error'));
      ctx.log.info(
        { exchange: spec.exchangeName, queue: queue.queue, routingKey: spec.routingKey },
        'amqp: consuming',
      );
    };
    const reconnect = async () => {
      for (let backoff = 500; !stopping; backoff = Math.min(backoff * 2, 30_000)) {
        try {
          await connect();
          return;
        } catch (err) {
          ctx.log.warn({ err: (err as Error).message, retryInMs: backoff }, 'amqp: cannot connect');
          await new Promise((r) => setTimeout(r, backoff));
        }
      }
    };
    await connect();
    return {
      async stop() {
        stopping = true;
        await chain;
        await conn?.close().catch(() => {});
      },
    };
  },
};
