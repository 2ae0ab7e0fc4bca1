// `webhook`: a plain HTTP endpoint. Routes onto the EventSource's shared server for its port and
// publishes upstream's `{header, body, metadata}`: Go-canonical header names with every value
// (credentials masked, see headers.ts), the body as upstream reads it (decode.ts).
import type { WebhookEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { DEFAULT_MAX_PAYLOAD } from './route.ts';

export const adapter: SourceAdapter<WebhookEventSource> = {
  type: 'webhook',
  exclusive: false,
  async start(ctx) {
    const w = ctx.spec;
    ctx.webhooks.addRoute(w.port, {
      eventName: ctx.eventName,
      endpoint: w.endpoint,
      method: w.method,
      maxPayloadSize: w.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD,
      bodyFormat: 'webhook',
      ...(w.authSecret ? { authToken: (await ctx.resolveSecret(w.authSecret)).trim() } : {}),
      ...(w.metadata ? { metadata: w.metadata } : {}),
      ...(w.serverCertSecret && w.serverKeySecret
        ? {
            tls: {
              cert: await ctx.resolveSecret(w.serverCertSecret),
              key: await ctx.resolveSecret(w.serverKeySecret),
            },
          }
        : {}),
      accept: (d) => ctx.emit(d.data, { id: d.id, ...(d.traceparent ? { traceparent: d.traceparent } : {}) }),
    });
    return { stop: async () => {} };
  },
};
