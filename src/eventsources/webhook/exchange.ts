// One request on a webhook port, from headers to answer. The order of checks is fixed: route
// (404/405), stopping (503), auth (401), declared size (413, before `100 Continue`), capacity
// (429), body within its bounds (413/408/503), the route's signature check (401/403), content
// (400), the route's own handling, and only then publish: 200 only after the bus confirmed every
// event; 503 + Retry-After when it did not (and the id used is remembered, so the sender's retry
// is the same event). Nothing here throws past `handleExchange`: an unexpected error is a 500.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BusError } from '../../bus/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { BodyHold, readBody } from './body.ts';
import type { ByteBudget } from './budget.ts';
import { decodeProviderBody, decodeWebhookBody } from './decode.ts';
import { publishedHeaders } from './headers.ts';
import { requestKey, type UnconfirmedIds } from './identity.ts';
import type { WebhookLimits } from './limits.ts';
import { type Prepared, RetryLater, type StandardPayload, type WebhookRoute } from './route.ts';
import { sameText } from './secrets.ts';

export const RETRY_AFTER_S = '2';
/** Most events one delivery may turn into (a larger one is refused, not amplified). */
export const MAX_EVENTS_PER_DELIVERY = 1000;
/** Status recorded (not sent) when the client went away before its request was complete. */
export const CLIENT_GONE = 499;

/** What the server shares with each of its requests. */
export interface ExchangeContext {
  port: number;
  limits: WebhookLimits;
  budget: ByteBudget;
  /** Header names masked in published events (lower case). */
  hidden: ReadonlySet<string>;
  identities: UnconfirmedIds;
  log: Logger;
  stopping(): boolean;
  /** Takes a slot among requests waiting for the bus; false when all are taken. */
  enterPublish(): boolean;
  leavePublish(): void;
  publishFull(): boolean;
  onResult(eventName: string | undefined, status: number): void;
}

type Answer = [status: number, message: string, headers?: Record<string, string>];

/** One request being handled; the server keeps the live ones to cut them on stop. */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: WebhookRoute | undefined;
  readonly hold: BodyHold;
  /** While publishing without a sender-given id: the content key and the id in use. */
  unconfirmed: { key: string; id: string } | undefined;
  stage: 'receiving' | 'publishing' | 'done' = 'receiving';
  private readonly ctx: ExchangeContext;
  private answered = false;

  constructor(
    ctx: ExchangeContext,
    req: IncomingMessage,
    res: ServerResponse,
    route: WebhookRoute | undefined,
  ) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.route = route;
    const cl = req.headers['content-length'];
    this.hold = new BodyHold(ctx.budget, cl === undefined ? undefined : Number(cl), route?.maxPayloadSize);
  }

  /** True when part of the request body was neither read nor discarded yet. */
  private bodyPending(): boolean {
    if (this.req.complete) return false;
    const cl = this.req.headers['content-length'];
    return (cl !== undefined && cl !== '0') || this.req.headers['transfer-encoding'] !== undefined;
  }

  /** Answers once with `message` + newline; `close` (or an unread body) ends the connection after. */
  answer(status: number, message: string, headers: Record<string, string> = {}, close = false): void {
    this.send(status, `${message}\n`, headers, close);
  }

  /** Answers once with `body` as is. */
  send(status: number, body: string, headers: Record<string, string> = {}, close = false): void {
    if (this.answered) return;
    this.answered = true;
    this.ctx.onResult(this.route?.eventName, status);
    const res = this.res;
    if (res.headersSent || res.destroyed || this.req.socket.destroyed) {
      this.rememberIfUnconfirmed();
      return;
    }
    const h: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', ...headers };
    if (close || this.bodyPending() || this.ctx.stopping()) {
      h.connection = 'close';
      // Read nothing more of an unread body (memory is what a refusal protects); Node closes the
      // connection once the answer is written.
      if (this.bodyPending()) this.req.socket.pause();
    }
    res.writeHead(status, h);
    res.end(body);
  }

  /** The client went away before its request was complete: nothing to answer. */
  gone(): void {
    if (this.answered) return;
    this.answered = true;
    this.ctx.onResult(this.route?.eventName, CLIENT_GONE);
  }

  /** Stop: answer 503 if still possible, then end the connection. */
  cut(): void {
    if (this.stage === 'publishing') this.rememberIfUnconfirmed();
    this.answer(503, 'shutting down; retry later', { 'retry-after': RETRY_AFTER_S }, true);
    this.req.socket.destroySoon();
  }

  /** The publish may have been stored: the sender's retry must reuse the id (see identity.ts). */
  rememberIfUnconfirmed(): void {
    if (this.unconfirmed) this.ctx.identities.remember(this.unconfirmed.key, this.unconfirmed.id);
  }
}

function precheck(ctx: ExchangeContext, ex: Exchange, path: string): Answer | undefined {
  const { req, route } = ex;
  if (!route) return [404, `no event source listens on ${path}`];
  const method = route.method.toUpperCase();
  if (req.method !== method) return [405, `${path} accepts ${method} only`, { allow: method }];
  if (ctx.stopping()) return [503, 'shutting down; retry later', { 'retry-after': RETRY_AFTER_S }];
  if (route.authToken) {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!token || !sameText(token, route.authToken)) {
      return [401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer' }];
    }
  }
  if (Number(req.headers['content-length'] ?? 0) > route.maxPayloadSize) {
    return [413, `body larger than ${route.maxPayloadSize} bytes`];
  }
  if (ctx.publishFull()) return [429, 'too many requests in flight; retry later', { 'retry-after': '1' }];
  return undefined;
}

/**
 * Handles one request (`expectContinue`: it asked `Expect: 100-continue`, which is granted only
 * once the route, auth and declared size passed). Resolves when the request is answered or gone.
 */
export async function handleExchange(
  ctx: ExchangeContext,
  ex: Exchange,
  path: string,
  expectContinue: boolean,
): Promise<void> {
  const refused = precheck(ctx, ex, path);
  if (refused) return ex.answer(...refused);
  const route = ex.route!;
  if (expectContinue) ex.res.writeContinue();
  const body = await readBody(ex.req, ex.hold, {
    max: route.maxPayloadSize,
    budget: ctx.budget,
    idleMs: ctx.limits.bodyIdleMs,
  });
  if (body.kind === 'gone') return ex.gone();
  if (body.kind === 'refused') {
    const retry: Record<string, string> = body.status === 503 ? { 'retry-after': RETRY_AFTER_S } : {};
    return ex.answer(body.status, body.message, retry, true);
  }
  const raw = body.raw;
  const bad = route.verify?.(ex.req.headers, raw);
  if (bad) return ex.answer(bad.status, bad.message);
  const query = (ex.req.url ?? '').split('?')[1] ?? '';
  const input = {
    method: ex.req.method ?? 'POST',
    contentType: ex.req.headers['content-type'],
    raw,
    query,
    maxDepth: ctx.limits.maxJsonDepth,
  };
  const decoded = route.bodyFormat === 'provider' ? decodeProviderBody(input) : decodeWebhookBody(input);
  if (!decoded.ok) return ex.answer(400, decoded.message);
  const hidden = route.hideHeaders?.length
    ? new Set([...ctx.hidden, ...route.hideHeaders.map((h) => h.toLowerCase())])
    : ctx.hidden;
  const standard: StandardPayload = {
    header: publishedHeaders(ex.req.headersDistinct, hidden),
    body: decoded.body,
    ...(route.metadata ? { metadata: route.metadata } : {}),
  };
  let prepared: Prepared;
  try {
    prepared = (await route.prepare?.(ex.req.headers, decoded.body, raw, standard)) ?? {};
  } catch (err) {
    if (err instanceof RetryLater) {
      return ex.answer(503, `not accepted, retry later: ${err.message}`, { 'retry-after': RETRY_AFTER_S });
    }
    return ex.answer(400, `not a valid delivery: ${(err as Error).message}`);
  }
  if (prepared.reply) {
    return ex.send(prepared.reply.status, prepared.reply.body, {
      'content-type': prepared.reply.contentType ?? 'text/plain; charset=utf-8',
    });
  }
  await publish(ctx, ex, prepared, standard, { query, raw });
}

/** The id a sender gave (Idempotency-Key, then X-Request-Id), when usable. */
function senderId(req: IncomingMessage): string | undefined {
  const v = req.headers['idempotency-key'] ?? req.headers['x-request-id'];
  return typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : undefined;
}

async function publish(
  ctx: ExchangeContext,
  ex: Exchange,
  prepared: Prepared,
  standard: StandardPayload,
  content: { query: string; raw: Buffer },
): Promise<void> {
  const route = ex.route!;
  if (!ctx.enterPublish()) {
    return ex.answer(429, 'too many requests in flight; retry later', { 'retry-after': '1' });
  }
  ex.stage = 'publishing';
  try {
    let base = prepared.id ?? senderId(ex.req);
    if (!base) {
      const key = requestKey({
        port: ctx.port,
        endpoint: route.endpoint,
        method: ex.req.method ?? '',
        contentType: ex.req.headers['content-type'],
        ...content,
      });
      base = ctx.identities.recall(key) ?? randomUUID();
      ex.unconfirmed = { key, id: base };
    }
    const traceparent =
      typeof ex.req.headers.traceparent === 'string' ? ex.req.headers.traceparent : undefined;
    const events = prepared.events ?? [{ data: prepared.data !== undefined ? prepared.data : standard }];
    if (events.length > MAX_EVENTS_PER_DELIVERY) {
      return ex.answer(413, `one delivery may carry at most ${MAX_EVENTS_PER_DELIVERY} events`);
    }
    // In order, each stored before the next: a retried delivery re-sends the same ids, so the
    // ones already stored are dropped as duplicates by the bus.
    for (const [i, ev] of events.entries()) {
      await route.accept({
        eventName: route.eventName,
        id: ev.id ?? (events.length > 1 ? `${base}-${i}` : base),
        ...(traceparent ? { traceparent } : {}),
        data: ev.data,
      });
    }
    ex.unconfirmed = ex.req.socket.destroyed ? ex.unconfirmed : undefined;
    ex.answer(200, 'accepted');
  } catch (err) {
    if (err instanceof BusError && err.code === 'MessageTooLarge') return ex.answer(413, err.message);
    if (err instanceof BusError && err.code === 'Invalid') return ex.answer(400, err.message);
    if (err instanceof BusError && err.retryable) {
      ex.rememberIfUnconfirmed();
      return ex.answer(503, `not accepted, retry later: ${err.code}`, { 'retry-after': RETRY_AFTER_S });
    }
    ctx.log.error({ err: (err as Error).message, event: route.eventName }, 'webhook: publishing failed');
    return ex.answer(500, 'internal error');
  } finally {
    ex.stage = 'done';
    ctx.leavePublish();
  }
}
