// What a webhook-style source registers on the shared server of its port: the route, its checks,
// and how a delivery becomes events.
import type { IncomingHttpHeaders } from 'node:http';

export const DEFAULT_MAX_PAYLOAD = 1_048_576;

export interface WebhookRoute {
  eventName: string;
  endpoint: string;
  method: string;
  maxPayloadSize: number;
  /**
   * How the body becomes the event's `body`: `webhook` = upstream's plain webhook (GET query,
   * form fields, else strict JSON); `provider` = strict JSON, or form text for the route's
   * `prepare` (default `webhook`). See decode.ts.
   */
  bodyFormat?: 'webhook' | 'provider';
  /** Bearer token requests must present, when configured. */
  authToken?: string;
  /** Serve this port over HTTPS with this certificate and key (PEM), when configured. */
  tls?: { cert: string; key: string };
  metadata?: Record<string, string>;
  /** Request headers masked in the published headers (lower case), besides the server's list. */
  hideHeaders?: string[];
  /** Publishes the event; resolves once it is durable (or filtered out), rejects with a BusError. */
  accept(delivery: WebhookDelivery): Promise<unknown>;
  /**
   * Signature/token check on the raw request, after the size check and before anything is parsed:
   * a refusal (401 missing, 403 wrong) is answered and nothing is published.
   */
  verify?(headers: IncomingHttpHeaders, raw: Buffer): { status: 401 | 403; message: string } | undefined;
  /**
   * Provider-specific handling after parsing: the delivery id (stable across the provider's
   * retries), the data to publish instead of `{header, body}`, several events from one delivery,
   * or a direct answer with nothing published (a URL-verification handshake, an event type that
   * is filtered out). `body` is the decoded body: a RawJson for JSON (its text as sent; ask for
   * fields with raw-json.ts `member`, or `.value`), form text for a form. `standard` is what would
   * be published otherwise ({header, body, metadata}). Throwing refuses the delivery with 400, or
   * 503 + Retry-After for RetryLater. It must finish within the exchange's deadline (`deadline`
   * aborts then; after it the request is answered 503).
   */
  prepare?(
    headers: IncomingHttpHeaders,
    body: unknown,
    raw: Buffer,
    standard: StandardPayload,
    deadline?: AbortSignal,
  ): Prepared | Promise<Prepared>;
}

/**
 * The upstream webhook payload: request headers (Go-canonical names, all values of each, secrets
 * masked), the body (a RawJson: JSON as sent; or the fields of a form or query), metadata.
 */
export interface StandardPayload {
  header: Record<string, string[]>;
  body: unknown;
  metadata?: Record<string, string>;
}

/** What a route's `prepare` makes of a delivery. */
export interface Prepared {
  id?: string | undefined;
  data?: unknown;
  /** Publish these instead of one event; the answer is 200 only once all of them are stored. */
  events?: Array<{ id?: string | undefined; data: unknown }>;
  reply?: { status: number; body: string; contentType?: string };
}

/** Thrown by `prepare` when the delivery cannot be judged now (e.g. a provider API is down). */
export class RetryLater extends Error {}

export interface WebhookDelivery {
  eventName: string;
  /**
   * The event id: the provider's delivery id, the sender's Idempotency-Key (or another configured
   * id header), the id an earlier unconfirmed attempt of the same request used, or a fresh one.
   */
  id: string;
  traceparent?: string;
  /** Upstream-compatible payload: { header, body, metadata }, or what the route's `prepare` made. */
  data: unknown;
}
