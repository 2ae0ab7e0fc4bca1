// `nsq`: a channel of an NSQ topic, found through nsqlookupd (`hostAddress`, its HTTP address) and
// polled every 5 s for new nsqd nodes (nsqjs). A message is FINished only after the bus stored
// its event, whose id is nsqd's message id (the same on every redelivery, so a message requeued
// after a crash or a timeout is stored once within the bus's duplicates window). While the bus
// refuses, the message is held and touched (its timeout reset) and the publish retried with
// backoff; on stop it is requeued at once. A message the bus refuses for good (too large) is
// counted, logged and FINished (requeueing it would loop for ever: maxAttempts is 0). At most 16 messages are in flight per connection.
// Consumers of one channel share its messages, so every replica runs. nsqd connections that
// drop are reconnected by the client; lookupd answers are retried at the poll interval.
import { type NsqMessage, Reader } from 'nsqjs';
import type { NSQEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { dateFromMs, msFromNanos } from '../fields.ts';
import { parseJsonText } from '../json.ts';
import { reportRefusal, storeHeld } from '../retry.ts';

const TOUCH_EVERY_MS = 20_000;

async function tlsOptions(ctx: SourceContext<NSQEventSource>) {
  const tls = ctx.spec.tls;
  if (!tls || !(tls.enabled || tls.caCertSecret || tls.clientCertSecret || tls.insecureSkipVerify)) return {};
  return {
    tls: true,
    tlsVerification: !tls.insecureSkipVerify,
    ...(tls.caCertSecret ? { ca: await ctx.resolveSecret(tls.caCertSecret) } : {}),
    ...(tls.clientCertSecret ? { cert: await ctx.resolveSecret(tls.clientCertSecret) } : {}),
    ...(tls.clientKeySecret ? { key: await ctx.resolveSecret(tls.clientKeySecret) } : {}),
  };
}

export const adapter: SourceAdapter<NSQEventSource> = {
  type: 'nsq',
  exclusive: false,
  async start(ctx) {
    const spec = ctx.spec;
    const lookupd = /^https?:\/\//.test(spec.hostAddress) ? spec.hostAddress : `http://${spec.hostAddress}`;
    const reader = new Reader(spec.topic, spec.channel, {
      lookupdHTTPAddresses: [lookupd],
      lookupdPollInterval: 5,
      maxInFlight: 16,
      // Redelivery is bounded by the Sensor side; nsqd must never drop a message here.
      maxAttempts: 0,
      ...(await tlsOptions(ctx)),
    });
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ctx.signal]);
    const inFlight = new Set<Promise<void>>();

    const handle = async (m: NsqMessage) => {
      let body: unknown = m.body.toString('utf8');
      if (spec.jsonBody) {
        try {
          body = parseJsonText(body as string);
        } catch {
          ctx.processingFailed('invalid-json');
          ctx.log.warn(
            { id: m.id },
            'nsq: message is not JSON although jsonBody is set; finished without an event',
          );
          m.finish();
          return;
        }
      }
      const time = dateFromMs(msFromNanos(m.timestamp));
      const data = {
        body,
        timestamp: (time ?? new Date()).toISOString(),
        ...(spec.metadata && Object.keys(spec.metadata).length ? { metadata: spec.metadata } : {}),
      };
      const touch = setInterval(() => m.touch(), TOUCH_EVERY_MS);
      try {
        const r = await storeHeld(() => ctx.emit(data, { id: m.id, ...(time ? { time } : {}) }), {
          signal,
          onHold: (err, waitMs) =>
            ctx.log.warn(
              { id: m.id, err: (err as Error).message, retryInMs: waitMs },
              'nsq: event not stored; message held, retrying',
            ),
        });
        if (r.outcome === 'stopped') m.requeue(0, false);
        else {
          if (r.outcome === 'refused') reportRefusal(ctx, { id: m.id }, r.err, 'finished without an event');
          m.finish();
        }
      } finally {
        clearInterval(touch);
      }
    };

    reader.on('message', (m: NsqMessage) => {
      const p = handle(m).catch((err: unknown) =>
        ctx.log.warn({ err: (err as Error).message }, 'nsq: message handling failed'),
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    });
    reader.on('error', (err: Error) => ctx.log.warn({ err: err.message }, 'nsq: connection error'));
    reader.on('nsqd_connected', (host: string, port: number) =>
      ctx.log.info({ nsqd: `${host}:${port}` }, 'nsq: connected'),
    );
    reader.on('nsqd_closed', (host: string, port: number) =>
      ctx.log.warn({ nsqd: `${host}:${port}` }, 'nsq: connection closed; the client reconnects'),
    );
    reader.connect();
    ctx.log.info({ lookupd, topic: spec.topic, channel: spec.channel }, 'nsq: consuming');
    return {
      async stop() {
        stop.abort();
        await Promise.allSettled([...inFlight]);
        reader.close();
      },
    };
  },
};
