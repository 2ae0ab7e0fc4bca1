// `stripe`: Stripe webhook deliveries, published as upstream does: {event, metadata}, with the
// Stripe event id as the event id (Stripe retries a delivery with the same id, so it is stored
// once). The upstream spec has no signing secret, so Stripe-Signature is not checked
// (webhook.authSecret can demand a bearer token from a proxy in front). Event types outside
// `eventFilter` are answered 200 and not published (upstream answers 400, which makes Stripe retry
// for days and eventually disable the endpoint). With createWebhook, the webhook endpoint is
// created through the Stripe API with apiKey when none calls this URL yet, subscribed to
// `eventFilter` (or all events). SLUICE_STRIPE_API_URL overrides the API base URL (e.g. for a
// proxy or a test stand-in).
import type { StripeEventSource } from '../../api/eventsource.ts';
import type { SourceAdapter } from '../adapter.ts';
import { members } from '../raw-json.ts';
import { type ApiCall, apiClient, type HookSite, registerIfConfigured } from './hooks.ts';
import { addSignedRoute, optionalSecret } from './signed.ts';

export const STRIPE_API = 'https://api.stripe.com';

interface Endpoint {
  id: string;
  url?: string;
}

interface List<T> {
  data?: T[];
  has_more?: boolean;
}

function stripeSite(spec: StripeEventSource, call: ApiCall): HookSite {
  return {
    label: 'account',
    async exists(url) {
      let after: string | undefined;
      for (let i = 0; i < 50; i++) {
        const page = (
          await call<List<Endpoint>>(
            'GET',
            `/v1/webhook_endpoints?limit=100${after ? `&starting_after=${after}` : ''}`,
          )
        ).body;
        const items = page.data ?? [];
        if (items.some((e) => e.url === url)) return true;
        if (!page.has_more || items.length === 0) return false;
        after = items[items.length - 1]!.id;
      }
      return false;
    },
    async create(url) {
      const made = await call<Endpoint>(
        'POST',
        '/v1/webhook_endpoints',
        { url, enabled_events: spec.eventFilter?.length ? spec.eventFilter : ['*'] },
        { form: true },
      );
      return async () => void (await call('DELETE', `/v1/webhook_endpoints/${made.body.id}`));
    },
  };
}

export const stripe: SourceAdapter<StripeEventSource> = {
  type: 'stripe',
  exclusive: false,
  async start(ctx) {
    const types = new Set(ctx.spec.eventFilter ?? []);
    const metadata = ctx.spec.metadata;
    await addSignedRoute(ctx, {
      prepare: (_h, body) => {
        // The delivery is published as sent (raw-json.ts); only the fields judged here are parsed.
        const m = members(body);
        const field = (k: string): unknown => m?.get(k)?.value;
        const id = field('id');
        const type = field('type');
        const object = field('object');
        if (
          !m ||
          typeof id !== 'string' ||
          typeof type !== 'string' ||
          (object !== undefined && object !== 'event')
        ) {
          throw new Error('expected a Stripe event (a JSON object with "id" and "type")');
        }
        if (types.size && !types.has(type)) {
          return { reply: { status: 200, body: `event type ${type} is not in eventFilter; ignored\n` } };
        }
        return {
          id,
          data: { event: body, ...(metadata && Object.keys(metadata).length ? { metadata } : {}) },
        };
      },
    });
    const key = ctx.spec.createWebhook ? await optionalSecret(ctx, ctx.spec.apiKey) : undefined;
    if (key) {
      const call = apiClient({
        base: process.env.SLUICE_STRIPE_API_URL || STRIPE_API,
        headers: () => ({ authorization: `Bearer ${key}` }),
      });
      await registerIfConfigured(ctx, ctx.spec.webhook, async () => [stripeSite(ctx.spec, call)]);
    }
    return { stop: async () => {} };
  },
};
