// Shared parts of the webhook sources of code hosts and SaaS providers (one file per type next to
// this one). Each checks the provider's signature or token on the raw body before anything is
// parsed, and takes the provider's delivery id as the event id, so a redelivery is stored once.
//
//   github           X-Hub-Signature-256 (or legacy X-Hub-Signature sha1) HMAC with webhookSecret; id X-GitHub-Delivery
//   gitlab           X-Gitlab-Token equal to secretToken;                    id X-Gitlab-Event-UUID / Idempotency-Key
//   bitbucketserver  X-Hub-Signature sha256 HMAC with webhookSecret;         id X-Request-Id
//   bitbucket        no shared secret in the upstream spec: not verified;    id X-Request-UUID
//   slack            X-Slack-Signature v0 HMAC of "v0:<timestamp>:<body>" with signingSecret, timestamp
//                    at most 5 minutes away; id event_id (Events API) or timestamp + signature
//   stripe           no signing secret in the upstream spec: not verified;   id = event id
//
// Answers when verification fails, the same for every type: 401 when the signature (or token) is
// missing, 403 when it is present but wrong (or, for Slack, its timestamp is stale). Nothing is
// published in either case. Without a configured secret a type accepts unsigned deliveries, as
// upstream does.
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { DEFAULT_PROVIDER_METHOD, type ProviderWebhookContext } from '../../api/common.ts';
import type { SecretKeySelector } from '../../api/k8s.ts';
import type { SourceContext } from '../adapter.ts';
import { DEFAULT_MAX_PAYLOAD, type StandardPayload, type WebhookRoute } from './route.ts';
import { sameText } from './secrets.ts';

export { canonicalHeaderName } from './headers.ts';
export { sameText };

export type Refusal = { status: 401 | 403; message: string } | undefined;

/** First value of a request header (names in lower case). */
export const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export const hmacHex = (algo: 'sha1' | 'sha256', secret: string, data: Buffer | string): string =>
  createHmac(algo, secret).update(data).digest('hex');

/** "<algo>=<hex>" with the hex in lower case (go-github decodes the hex, so either case matches). */
const lowerHex = (sig: string): string => {
  const eq = sig.indexOf('=');
  return eq < 0 ? sig : sig.slice(0, eq + 1) + sig.slice(eq + 1).toLowerCase();
};

/**
 * GitHub / Bitbucket Server style "sha256=<hex>" signatures over the raw body. `sha1Header` is
 * GitHub's legacy X-Hub-Signature, used only when the sha256 one is absent.
 */
export function checkHubSignature(
  secret: string,
  raw: Buffer,
  sha256Header: string | undefined,
  sha1Header?: string,
): Refusal {
  if (sha256Header) {
    const want = `sha256=${hmacHex('sha256', secret, raw)}`;
    return sameText(lowerHex(sha256Header.trim()), want)
      ? undefined
      : { status: 403, message: 'signature does not match' };
  }
  if (sha1Header) {
    const want = `sha1=${hmacHex('sha1', secret, raw)}`;
    return sameText(lowerHex(sha1Header.trim()), want)
      ? undefined
      : { status: 403, message: 'signature does not match' };
  }
  return { status: 401, message: 'delivery is not signed' };
}

/** A token sent as-is in a header (GitLab's X-Gitlab-Token). */
export function checkToken(secret: string, got: string | undefined, name: string): Refusal {
  if (!got) return { status: 401, message: `${name} is missing` };
  return sameText(got, secret) ? undefined : { status: 403, message: `${name} is wrong` };
}

/** Oldest (and furthest in the future) a Slack request timestamp may be, in seconds. */
export const SLACK_MAX_SKEW_S = 300;

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
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - ts) > SLACK_MAX_SKEW_S) {
    return { status: 403, message: 'request timestamp is more than 5 minutes away' };
  }
  const want = `v0=${hmacHex('sha256', secret, Buffer.concat([Buffer.from(`v0:${timestamp}:`), raw]))}`;
  return sameText(signature, want) ? undefined : { status: 403, message: 'signature does not match' };
}

export function parseForm(raw: Buffer): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
}

/**
 * `{ id }` from the first of these headers that is set. An id that can never be published
 * (too long, control characters) is refused with 400 by the exchange, not replaced.
 */
export function idFrom(h: IncomingHttpHeaders, ...names: string[]): { id?: string } {
  for (const n of names) {
    const v = header(h, n);
    if (v) return { id: v };
  }
  return {};
}

export async function optionalSecret(
  ctx: Pick<SourceContext<unknown>, 'resolveSecret'>,
  sel: SecretKeySelector | undefined,
): Promise<string | undefined> {
  return sel ? (await ctx.resolveSecret(sel)).trim() : undefined;
}

export interface HookSpec {
  webhook: ProviderWebhookContext;
  metadata?: Record<string, string> | undefined;
}

/**
 * Adds the source's route on the shared server for its port, with the type's checks. Also applies
 * the common webhook fields: TLS (serverCertSecret/serverKeySecret), authSecret (bearer token),
 * maxPayloadSize and metadata (webhook.metadata and the source's metadata, the latter winning).
 */
export async function addSignedRoute(
  ctx: SourceContext<HookSpec>,
  extra: Pick<WebhookRoute, 'verify' | 'prepare' | 'hideHeaders'>,
): Promise<void> {
  const hook = ctx.spec.webhook;
  const tls =
    hook.serverCertSecret && hook.serverKeySecret
      ? {
          cert: await ctx.resolveSecret(hook.serverCertSecret),
          key: await ctx.resolveSecret(hook.serverKeySecret),
        }
      : undefined;
  const authToken = await optionalSecret(ctx, hook.authSecret);
  const metadata = { ...(hook.metadata ?? {}), ...(ctx.spec.metadata ?? {}) };
  ctx.webhooks.addRoute(hook.port, {
    eventName: ctx.eventName,
    endpoint: hook.endpoint,
    method: hook.method ?? DEFAULT_PROVIDER_METHOD,
    maxPayloadSize: hook.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD,
    bodyFormat: 'provider',
    ...(authToken ? { authToken } : {}),
    ...(Object.keys(metadata).length ? { metadata } : {}),
    ...(tls ? { tls } : {}),
    accept: (d) => ctx.emit(d.data, { id: d.id, ...(d.traceparent ? { traceparent: d.traceparent } : {}) }),
    ...extra,
  });
}

/**
 * The payload upstream's code-host sources (GitHub, GitLab, Bitbucket Cloud and Server) publish:
 * `headers` (Go-canonical names, every value, secrets masked), the parsed `body`, and `metadata` when set.
 */
export function codeHostPayload(standard: StandardPayload): {
  headers: Record<string, string[]>;
  body: unknown;
  metadata?: Record<string, string>;
} {
  return {
    headers: standard.header,
    body: standard.body,
    ...(standard.metadata ? { metadata: standard.metadata } : {}),
  };
}
