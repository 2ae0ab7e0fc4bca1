// Webhook sources of code hosts and SaaS providers on the shared HTTP server: each checks the
// provider's signature or token before anything is parsed (401 when it is missing, 403 when it is
// wrong) and takes the provider's delivery id as the event id, so a redelivery is stored once.
//
//   github           X-Hub-Signature-256 (or legacy X-Hub-Signature sha1) HMAC with webhookSecret; id X-GitHub-Delivery
//   gitlab           X-Gitlab-Token equal to secretToken;                    id X-Gitlab-Event-UUID
//   bitbucketserver  X-Hub-Signature sha256 HMAC with webhookSecret;         id X-Request-Id
//   bitbucket        (no shared secret in the upstream spec);                id X-Request-UUID / X-Hook-UUID
//   slack            X-Slack-Signature v0 HMAC of "v0:<timestamp>:<body>" with signingSecret, timestamp
//                    at most 5 minutes old; URL verification answered; id event_id (events API)
//   stripe           (no signing secret in the upstream spec); id = event id; eventFilter by type
//
// GitHub hooks are registered through the REST API when apiToken is set (github-hooks.ts; the API
// base URL follows githubBaseURL). For the other providers (accessToken, auth, createWebhook) and
// GitHub Apps this build does not register hooks: those fields are accepted and a warning says the
// hook must be created in the provider's settings.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type {
  BitbucketEventSource,
  BitbucketServerEventSource,
  GithubEventSource,
  GitlabEventSource,
  SlackEventSource,
  StripeEventSource,
} from '../../api/eventsource.ts';
import type { SecretKeySelector } from '../../api/k8s.ts';
import type { SourceAdapter, SourceContext } from '../adapter.ts';
import { registerGithubHooks } from './github-hooks.ts';
import { DEFAULT_MAX_PAYLOAD, type WebhookRoute } from './server.ts';

type Refusal = { status: 401 | 403; message: string } | undefined;

const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export const hmacHex = (algo: 'sha1' | 'sha256', secret: string, data: Buffer | string): string =>
  createHmac(algo, secret).update(data).digest('hex');

/** GitHub / Bitbucket Server style "sha256=<hex>" (or "sha1=<hex>") signatures. */
export function checkHubSignature(
  secret: string,
  raw: Buffer,
  sha256Header: string | undefined,
  sha1Header?: string,
): Refusal {
  if (sha256Header) {
    const want = `sha256=${hmacHex('sha256', secret, raw)}`;
    return sameText(sha256Header, want) ? undefined : { status: 403, message: 'signature does not match' };
  }
  if (sha1Header) {
    const want = `sha1=${hmacHex('sha1', secret, raw)}`;
    return sameText(sha1Header, want) ? undefined : { status: 403, message: 'signature does not match' };
  }
  return { status: 401, message: 'delivery is not signed' };
}

/** Slack request signing: v0=HMAC-SHA256("v0:<timestamp>:<body>"), timestamp within 5 minutes. */
export function checkSlackSignature(
  secret: string,
  raw: Buffer,
  timestamp: string | undefined,
  signature: string | undefined,
  nowSeconds = Date.now() / 1000,
): Refusal {
  if (!timestamp || !signature) return { status: 401, message: 'request is not signed' };
  const ts = Number(timestamp);
  if (!Number.isFinite(ts) || Math.abs(nowSeconds - ts) > 300) {
    return { status: 403, message: 'request timestamp is more than 5 minutes away' };
  }
  const want = `v0=${hmacHex('sha256', secret, Buffer.concat([Buffer.from(`v0:${timestamp}:`), raw]))}`;
  return sameText(signature, want) ? undefined : { status: 403, message: 'signature does not match' };
}

function parseForm(raw: Buffer): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
}

interface HookSpec {
  webhook?:
    | {
        endpoint: string;
        method: string;
        port: string;
        maxPayloadSize?: number | undefined;
        metadata?: Record<string, string> | undefined;
        serverCertSecret?: SecretKeySelector | undefined;
        serverKeySecret?: SecretKeySelector | undefined;
      }
    | undefined;
  metadata?: Record<string, string> | undefined;
}

async function secret(
  ctx: SourceContext<unknown>,
  sel: SecretKeySelector | undefined,
): Promise<string | undefined> {
  return sel ? (await ctx.resolveSecret(sel)).trim() : undefined;
}

async function route(
  ctx: SourceContext<HookSpec>,
  extra: Pick<WebhookRoute, 'verify' | 'prepare'>,
): Promise<void> {
  const hook = ctx.spec.webhook;
  if (!hook) throw new Error(`${ctx.type} event ${ctx.eventName} has no webhook (endpoint, port, method)`);
  const tls =
    hook.serverCertSecret && hook.serverKeySecret
      ? {
          cert: await ctx.resolveSecret(hook.serverCertSecret),
          key: await ctx.resolveSecret(hook.serverKeySecret),
        }
      : undefined;
  const metadata = { ...(hook.metadata ?? {}), ...(ctx.spec.metadata ?? {}) };
  ctx.webhooks.addRoute(hook.port, {
    eventName: ctx.eventName,
    endpoint: hook.endpoint,
    method: hook.method,
    maxPayloadSize: hook.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD,
    ...(Object.keys(metadata).length ? { metadata } : {}),
    ...(tls ? { tls } : {}),
    accept: (d) =>
      ctx.emit(d.data, {
        ...(d.id ? { id: d.id } : {}),
        ...(d.traceparent ? { traceparent: d.traceparent } : {}),
      }),
    ...extra,
  });
}

function warnRegistration(ctx: SourceContext<unknown>, fields: string[]): void {
  if (fields.length) {
    ctx.log.warn(
      { fields },
      `${ctx.type}: registering the hook with the provider is not done by this build; create it in the provider's settings pointing at this endpoint`,
    );
  }
}

const idFrom = (h: IncomingHttpHeaders, ...names: string[]) => {
  for (const n of names) {
    const v = header(h, n);
    if (v) return { id: v };
  }
  return {};
};

export const github: SourceAdapter<GithubEventSource> = {
  type: 'github',
  exclusive: false,
  async start(ctx) {
    const key = await secret(ctx, ctx.spec.webhookSecret);
    if (ctx.spec.githubApp && !ctx.spec.apiToken) warnRegistration(ctx, ['githubApp']);
    await route(ctx, {
      ...(key
        ? {
            verify: (h, raw) =>
              checkHubSignature(key, raw, header(h, 'x-hub-signature-256'), header(h, 'x-hub-signature')),
          }
        : {}),
      prepare: (h) => idFrom(h, 'x-github-delivery'),
    });
    const token = await secret(ctx, ctx.spec.apiToken);
    const hooks = token ? await registerGithubHooks(ctx.spec, token, key, ctx.log) : undefined;
    return {
      async stop() {
        if (ctx.spec.deleteHookOnFinish) await hooks?.remove();
      },
    };
  },
};

export const gitlab: SourceAdapter<GitlabEventSource> = {
  type: 'gitlab',
  exclusive: false,
  async start(ctx) {
    const token = await secret(ctx, ctx.spec.secretToken);
    warnRegistration(ctx, ['accessToken']);
    await route(ctx, {
      ...(token
        ? {
            verify: (h) => {
              const got = header(h, 'x-gitlab-token');
              if (!got) return { status: 401, message: 'X-Gitlab-Token is missing' };
              return sameText(got, token) ? undefined : { status: 403, message: 'X-Gitlab-Token is wrong' };
            },
          }
        : {}),
      prepare: (h) => idFrom(h, 'x-gitlab-event-uuid', 'idempotency-key'),
    });
    return { stop: async () => {} };
  },
};

export const bitbucketserver: SourceAdapter<BitbucketServerEventSource> = {
  type: 'bitbucketserver',
  exclusive: false,
  async start(ctx) {
    const key = await secret(ctx, ctx.spec.webhookSecret);
    warnRegistration(ctx, ctx.spec.accessToken ? ['accessToken'] : []);
    await route(ctx, {
      ...(key ? { verify: (h, raw) => checkHubSignature(key, raw, header(h, 'x-hub-signature')) } : {}),
      prepare: (h) => idFrom(h, 'x-request-id'),
    });
    return { stop: async () => {} };
  },
};

export const bitbucket: SourceAdapter<BitbucketEventSource> = {
  type: 'bitbucket',
  exclusive: false,
  async start(ctx) {
    warnRegistration(ctx, ctx.spec.auth ? ['auth'] : []);
    await route(ctx, { prepare: (h) => idFrom(h, 'x-request-uuid', 'x-hook-uuid') });
    return { stop: async () => {} };
  },
};

export const slack: SourceAdapter<SlackEventSource> = {
  type: 'slack',
  exclusive: false,
  async start(ctx) {
    const signing = await secret(ctx, ctx.spec.signingSecret);
    await route(ctx, {
      ...(signing
        ? {
            verify: (h, raw) =>
              checkSlackSignature(
                signing,
                raw,
                header(h, 'x-slack-request-timestamp'),
                header(h, 'x-slack-signature'),
              ),
          }
        : {}),
      prepare: (h, body, raw) => {
        // Events API (JSON), interactions (form field "payload" holding JSON), slash commands (form).
        let data: unknown = body;
        if (typeof body === 'string') {
          const form = parseForm(raw);
          data = form.payload ? JSON.parse(form.payload) : form;
        }
        const d = data as { type?: string; challenge?: string; event_id?: string } | null;
        if (d?.type === 'url_verification' && typeof d.challenge === 'string') {
          return {
            reply: {
              status: 200,
              body: JSON.stringify({ challenge: d.challenge }),
              contentType: 'application/json',
            },
          };
        }
        const ts = header(h, 'x-slack-request-timestamp');
        const sig = header(h, 'x-slack-signature');
        const id = d?.event_id ?? (ts && sig ? `${ts}-${sig.slice(3, 27)}` : undefined);
        return { data, ...(id ? { id } : {}) };
      },
    });
    return { stop: async () => {} };
  },
};

export const stripe: SourceAdapter<StripeEventSource> = {
  type: 'stripe',
  exclusive: false,
  async start(ctx) {
    warnRegistration(ctx, ctx.spec.createWebhook ? ['createWebhook'] : []);
    const types = new Set(ctx.spec.eventFilter ?? []);
    await route(ctx, {
      prepare: (_h, body) => {
        const ev = body as { id?: unknown; type?: unknown; object?: unknown } | null;
        if (!ev || typeof ev !== 'object' || ev.object !== 'event' || typeof ev.id !== 'string') {
          throw new Error('expected a Stripe event object (JSON with "object": "event" and an id)');
        }
        if (types.size && !types.has(String(ev.type))) {
          return { reply: { status: 200, body: 'event type not subscribed; ignored\n' } };
        }
        return { id: ev.id, data: ev };
      },
    });
    return { stop: async () => {} };
  },
};
