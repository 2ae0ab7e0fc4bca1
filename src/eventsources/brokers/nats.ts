// `nats`: a subject on a NATS server other than the bus (core NATS, optionally in a queue group).
// Each message becomes an event; its id is the message's Nats-Msg-Id header when the sender set
// one (a resend is then stored once). A request (a message with a reply subject) is answered only
// after the bus stored the event ("ok"), or with an error the sender can retry on, so a sender
// that uses request/reply learns whether its event was accepted. Plain publishes are at most once,
// as core NATS itself is.
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  headers as natsHeaders,
  nkeyAuthenticator,
} from '@nats-io/transport-node';

import type { NATSEventsSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { parseJsonRaw } from '../json.ts';
import { isDefiniteRefusal, reportRefusal } from '../retry.ts';

export const adapter: SourceAdapter<NATSEventsSource> = {
  type: 'nats',
  exclusive: true,
  async start(ctx) {
    const spec = ctx.spec;
    const opts: ConnectionOptions = {
      servers: spec.url,
      name: `sluice eventsource ${ctx.namespace}/${ctx.eventSourceName}/${ctx.eventName}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      waitOnFirstConnect: true,
    };
    const auth = spec.auth;
    if (auth?.basic) {
      if (auth.basic.username) opts.user = (await ctx.resolveSecret(auth.basic.username)).trim();
      if (auth.basic.password) opts.pass = (await ctx.resolveSecret(auth.basic.password)).trim();
    } else if (auth?.token) {
      opts.token = (await ctx.resolveSecret(auth.token)).trim();
    } else if (auth?.nkey) {
      opts.authenticator = nkeyAuthenticator(
        new TextEncoder().encode((await ctx.resolveSecret(auth.nkey)).trim()),
      );
    } else if (auth?.credential) {
      opts.authenticator = credsAuthenticator(
        new TextEncoder().encode(await ctx.resolveSecret(auth.credential)),
      );
    }
    const tls = spec.tls;
    if (tls && (tls.caCertSecret || tls.clientCertSecret || tls.insecureSkipVerify || tls.enabled)) {
      opts.tls = {
        ...(tls.caCertSecret ? { ca: await ctx.resolveSecret(tls.caCertSecret) } : {}),
        ...(tls.clientCertSecret ? { cert: await ctx.resolveSecret(tls.clientCertSecret) } : {}),
        ...(tls.clientKeySecret ? { key: await ctx.resolveSecret(tls.clientKeySecret) } : {}),
        ...(tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
      };
    }
    const nc = await connect(opts);
    const sub = nc.subscribe(spec.subject, spec.queue ? { queue: spec.queue } : {});
    const loop = (async () => {
      for await (const m of sub) {
        const header: Record<string, string[]> = {};
        for (const [k, v] of m.headers ?? []) header[k] = v;
        let data: unknown = m.string();
        if (spec.jsonBody) {
          try {
            data = parseJsonRaw(m.string());
          } catch {
            ctx.processingFailed('invalid-json');
            ctx.log.warn(
              { subject: m.subject },
              'nats: message is not JSON although jsonBody is set; dropped',
            );
            if (m.reply) m.respond(new TextEncoder().encode('error: body is not JSON'));
            continue;
          }
        }
        const id = m.headers?.get('Nats-Msg-Id') || undefined;
        try {
          await ctx.emit(
            { subject: m.subject, data, header, ...(spec.metadata ? { metadata: spec.metadata } : {}) },
            id ? { id } : {},
          );
          if (m.reply) m.respond(new TextEncoder().encode('ok'));
        } catch (err) {
          const refused = isDefiniteRefusal(err);
          if (refused) reportRefusal(ctx, { subject: m.subject }, err, 'answered with an error');
          const h = refused ? natsHeaders(413, 'refused') : natsHeaders(503, 'not stored');
          if (m.reply)
            m.respond(new TextEncoder().encode(`error: ${(err as Error).message}`), { headers: h });
          ctx.log.warn({ subject: m.subject, err: (err as Error).message }, 'nats: event not stored');
        }
      }
    })();
    ctx.log.info({ url: spec.url, subject: spec.subject, queue: spec.queue }, 'nats: subscribed');
    return {
      async stop() {
        await sub.drain().catch(() => {});
        await loop;
        await nc.close();
      },
    };
  },
};
