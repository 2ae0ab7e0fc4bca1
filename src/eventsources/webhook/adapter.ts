// `webhook`: a plain HTTP endpoint. Routes onto the EventSource's shared server for its port.
import type { WebhookEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { DEFAULT_MAX_PAYLOAD } from './server.ts';

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
      accept: (d) =>
        ctx.emit(d.data, {
          ...(d.id ? { id: d.id } : {}),
          ...(d.traceparent ? { traceparent: d.traceparent } : {}),
        }),
    });
    return { stop: async () => {} };
  },
};
