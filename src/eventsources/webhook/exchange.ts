// One request on a webhook port, from headers to answer. The order of checks is fixed: route
// (404/405), stopping (503), auth (401), declared size (413, before `100 Continue`), capacity
// (429), body within its bounds, checked chunk by chunk as it arrives (413/408/400/503), the
// route's signature check (401/403), content (400/413), the route's own handling (bounded in
// time), the event ids (400 when one can never be published, 422 when an Idempotency-Key comes
// back with other content), and only then publish: 200 only after the bus confirmed every event;
// 503 + Retry-After when it did not (and the id used is remembered, so the sender's retry is the
// same event, see identity.ts). A request whose answer can no longer reach its client (it went
// away, or an earlier request on its connection closes it) is not published. Nothing here throws
// past `handleExchange`: an unexpected error is a 500.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BusError } from '../../bus/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { eventIdProblem } from '../event-id.ts';
import { BodyHold, readBody } from './body.ts';
import type { ByteBudget } from './budget.ts';
import { bodyCheck, type Decoded, decodeProviderBody, decodeWebhookBody } from './decode.ts';
import { publishedRawHeaders } from './headers.ts';
import { contentDigest, requestKey, type UnconfirmedIds } from './identity.ts';
import type { WebhookLimits } from './limits.ts';
import { type Prepared, RetryLater, type StandardPayload, type WebhookRoute } from './route.ts';
import { sameText } from './secrets.ts';

export const RETRY_AFTER_S = '2';
/** Most events one delivery may turn into (a larger one is refused, not amplified). */
export const MAX_EVENTS_PER_DELIVERY = 1000;
/** Status recorded (not sent) when the client went away before its request was complete. */
export const CLIENT_GONE = 499;
/** Longest a route's own handling (`prepare`, e.g. provider API calls) may take (ms): then 503. */
export const PREPARE_DEADLINE_MS = 8_000;
/**
 * A publish not confirmed this long (ms) has an unknown outcome from then on: its id is shared
 * (identity.ts), so a crash or a stop after this moment cannot turn the sender's retry into a
 * second event.
 */
export const SHARE_ID_AFTER_MS = 200;

/** How long a connection refused mid-upload stays half-open after its answer (ms). */
export const LINGER_MS = 500;

/**
 * Closing a connection whose client is still sending makes the kernel reset it, and a reset can
 * destroy the answer before the client reads it: the client sees a network error instead of its
 * 413 and sends the poison again. So, as Go's server does (closeWriteAndWait), the answer is
 * followed by a FIN and the connection is destroyed only LINGER_MS later (reading nothing more).
 */
function lingerClose(socket: IncomingMessage['socket']): void {
  socket.destroySoon = function lingering(this: typeof socket) {
    if (this.destroyed) return;
    this.end();
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  };
}

/** What the server shares with each of its requests. */
export interface ExchangeContext {
  port: number;
  limits: WebhookLimits;
  budget: ByteBudget;
  /** Header names masked in published events (lower case). */
  hidden: ReadonlySet<string>;
  /** Request headers whose value is the event id when present, in order (lower case). */
  idHeaders: readonly string[];
  identities: UnconfirmedIds;
  log: Logger;
  stopping(): boolean;
  /** Takes a slot among requests waiting for the bus; false when all are taken. */
  enterPublish(): boolean;
  leavePublish(): void;
  publishFull(): boolean;
  /**
   * True while the bus is slow to confirm (publishes of this process unsettled for a while): a
   * request without a sender-given id then writes its id record before its event (identity.ts).
   */
  busSlow(): boolean;
  onResult(eventName: string | undefined, status: number): void;
}

type Answer = [status: number, message: string, headers?: Record<string, string>];

/** One request being handled; the server keeps the live ones to cut them on stop. */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: WebhookRoute | undefined;
  readonly hold: BodyHold;
  stage: 'receiving' | 'publishing' | 'done' = 'receiving';
  private readonly ctx: ExchangeContext;
  private answered = false;
  /** True once a 2xx was written to a connection still open. */
  private accepted = false;
  /** While publishing without a sender-given id: the content key (identity.ts). */
  private identityKey: string | undefined;

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

  /**
   * True while an answer written now can still reach the client: the connection is open and no
   * earlier (pipelined) answer on it closes it first (e.g. Node's 400 to a request without Host).
   */
  reachable(): boolean {
    const socket = this.req.socket as IncomingMessage['socket'] & {
      _httpMessage?: (ServerResponse & { _last?: boolean }) | null;
    };
    // `!writable`: an earlier answer closed the connection (it is ending, not yet destroyed).
    if (socket.destroyed || !socket.writable || this.res.destroyed || this.res.headersSent) return false;
    const current = socket._httpMessage;
    return !(current && current !== this.res && current._last);
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
    if (!this.reachable()) return;
    const h: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', ...headers };
    if (close || this.bodyPending() || this.ctx.stopping()) {
      h.connection = 'close';
      // Read nothing more of an unread body (memory is what a refusal protects); Node closes the
      // connection once the answer is written, after a moment (lingerClose).
      if (this.bodyPending()) {
        this.req.socket.pause();
        lingerClose(this.req.socket);
      }
    }
    this.res.writeHead(status, h);
    this.res.end(body);
    if (status >= 200 && status < 300) this.accepted = true;
  }

  /** The client went away before its request was complete: nothing to answer. */
  gone(): void {
    if (this.answered) return;
    this.answered = true;
    this.ctx.onResult(this.route?.eventName, CLIENT_GONE);
  }

  /** Stop: answer 503 if still possible, then end the connection. */
  cut(): void {
    this.shareIdentity();
    this.answer(503, 'shutting down; retry later', { 'retry-after': RETRY_AFTER_S }, true);
    this.req.socket.destroySoon();
  }

  /** Starts the content identity of a request without a sender-given id; returns its id. */
  beginIdentity(key: string): string {
    this.identityKey = key;
    return this.ctx.identities.begin(key);
  }

  /** The outcome of the publish is unknown from now on: keep (and share) its id. */
  shareIdentity(): void {
    if (this.identityKey) this.ctx.identities.ambiguous(this.identityKey);
  }

  /**
   * The publish is over: the id is forgotten when the outcome is known to the client (it got its
   * 200, or a definite refusal: nothing was stored), else kept for the window.
   */
  endIdentity(definite = false): void {
    if (!this.identityKey) return;
    this.ctx.identities.end(this.identityKey, this.accepted || definite);
    this.identityKey = undefined;
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

/** What a route without `prepare` makes of a delivery: publish the standard payload. */
const NOT_PREPARED: Prepared = Object.freeze({});

/** The header names masked for `route`: the server's and the route's own (computed once per route). */
const hiddenByRoute = new WeakMap<WebhookRoute, ReadonlySet<string>>();
function hiddenFor(ctx: ExchangeContext, route: WebhookRoute): ReadonlySet<string> {
  if (!route.hideHeaders?.length) return ctx.hidden;
  let hidden = hiddenByRoute.get(route);
  if (!hidden) {
    hidden = new Set([...ctx.hidden, ...route.hideHeaders.map((h) => h.toLowerCase())]);
    hiddenByRoute.set(route, hidden);
  }
  return hidden;
}

/** Runs the route's `prepare` within PREPARE_DEADLINE_MS. */
async function prepareWithin(
  route: WebhookRoute,
  args: Parameters<NonNullable<WebhookRoute['prepare']>>,
): Promise<Prepared> {
  if (!route.prepare) return {};
  const deadline = AbortSignal.timeout(PREPARE_DEADLINE_MS);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve(route.prepare(args[0], args[1], args[2], args[3], deadline)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new RetryLater(`handling took longer than ${PREPARE_DEADLINE_MS} ms`)),
          PREPARE_DEADLINE_MS + 100,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
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
  const format = route.bodyFormat ?? 'webhook';
  const limits = { maxDepth: ctx.limits.maxJsonDepth, maxNodes: ctx.limits.maxBodyNodes };
  const method = ex.req.method ?? 'POST';
  const contentType = ex.req.headers['content-type'];
  const check = bodyCheck({ format, method, contentType, ...limits });
  const body = await readBody(ex.req, ex.hold, {
    max: route.maxPayloadSize,
    budget: ctx.budget,
    idleMs: ctx.limits.bodyIdleMs,
    check,
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
  const input = { method, contentType, raw, query, check, ...limits };
  const decoded: Decoded = format === 'provider' ? decodeProviderBody(input) : decodeWebhookBody(input);
  if (!decoded.ok) return ex.answer(decoded.status, decoded.message);
  const standard: StandardPayload = {
    header: publishedRawHeaders(ex.req.rawHeaders, hiddenFor(ctx, route)),
    body: decoded.body,
    ...(route.metadata ? { metadata: route.metadata } : {}),
  };
  let prepared: Prepared = NOT_PREPARED;
  try {
    if (route.prepare) prepared = await prepareWithin(route, [ex.req.headers, decoded.body, raw, standard]);
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
  // Returned, not awaited: this function's state (the body check, the decoded body) is not kept
  // while the bus confirms.
  return publish(ctx, ex, prepared, standard, { query, raw });
}

/** The id a sender gave in one of the id headers (Idempotency-Key by default), if any. */
function senderId(req: IncomingMessage, names: readonly string[]): string | undefined {
  for (const n of names) {
    const v = req.headers[n];
    if (typeof v === 'string' && v.length > 0) return v;
  }
  return undefined;
}

/** Why the delivery's ids cannot be used (answered before anything is published), or undefined. */
function idRefusal(
  ctx: ExchangeContext,
  ex: Exchange,
  prepared: Prepared,
  given: string | undefined,
  content: { query: string; raw: Buffer },
): Answer | undefined {
  const problem = (id: string | undefined) => (id === undefined ? undefined : eventIdProblem(id));
  let bad = problem(given);
  for (let i = 0; !bad && prepared.events && i < prepared.events.length; i++)
    bad = problem(prepared.events[i]!.id);
  if (bad) return [400, `the event id ${bad}`];
  // A sender-given key seen with other content within the window: the bus would keep the first
  // event and silently drop this one.
  if (given !== undefined && prepared.id === undefined) {
    const scope = `${ctx.port}\0${ex.route!.eventName}\0${given}`;
    if (!ctx.identities.claimKey(scope, contentDigest(content.raw, ex.req.method ?? '', content.query))) {
      return [422, 'this idempotency key was used with a different request; use a new key'];
    }
  }
  return undefined;
}

async function publish(
  ctx: ExchangeContext,
  ex: Exchange,
  prepared: Prepared,
  standard: StandardPayload,
  content: { query: string; raw: Buffer },
): Promise<void> {
  const route = ex.route!;
  const given = prepared.id ?? senderId(ex.req, ctx.idHeaders);
  const events = prepared.events ?? [{ data: prepared.data !== undefined ? prepared.data : standard }];
  if (events.length > MAX_EVENTS_PER_DELIVERY) {
    return ex.answer(413, `one delivery may carry at most ${MAX_EVENTS_PER_DELIVERY} events`);
  }
  const refused = idRefusal(ctx, ex, prepared, given, content);
  if (refused) return ex.answer(...refused);
  // Nobody would hear the answer (the client left, or the connection closes before it): the
  // sender retries, so this attempt must not store anything.
  if (!ex.reachable()) return ex.gone();
  if (!ctx.enterPublish()) {
    return ex.answer(429, 'too many requests in flight; retry later', { 'retry-after': '1' });
  }
  ex.stage = 'publishing';
  const base =
    given ??
    ex.beginIdentity(
      requestKey({
        port: ctx.port,
        endpoint: route.endpoint,
        method: ex.req.method ?? '',
        contentType: ex.req.headers['content-type'],
        userAgent: ex.req.headers['user-agent'],
        ...content,
      }),
    );
  // The id record goes on the bus connection before the event when the bus is slow already (then
  // whatever part of the connection's bytes a resumed bus reads, no event is there without its
  // id), else once the event is unconfirmed for a moment.
  if (ctx.busSlow()) ex.shareIdentity();
  const slow = setTimeout(() => ex.shareIdentity(), SHARE_ID_AFTER_MS);
  let definite = false;
  try {
    const traceparent =
      typeof ex.req.headers.traceparent === 'string' ? ex.req.headers.traceparent : undefined;
    // In order, each stored before the next: a retried delivery re-sends the same ids, so the
    // ones already stored are dropped as duplicates by the bus.
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      await route.accept({
        eventName: route.eventName,
        id: ev.id ?? (events.length > 1 ? `${base}-${i}` : base),
        ...(traceparent ? { traceparent } : {}),
        data: ev.data,
      });
    }
    ex.answer(200, 'accepted');
  } catch (err) {
    // Definite refusals: the same event fails the same way every time, nothing was stored.
    definite = err instanceof BusError && !err.retryable;
    if (err instanceof BusError && err.code === 'MessageTooLarge') return ex.answer(413, err.message);
    if (err instanceof BusError && err.code === 'Invalid') return ex.answer(400, err.message);
    if (err instanceof BusError && err.retryable) {
      ex.shareIdentity();
      return ex.answer(503, `not accepted, retry later: ${err.code}`, { 'retry-after': RETRY_AFTER_S });
    }
    ctx.log.error({ err: (err as Error).message, event: route.eventName }, 'webhook: publishing failed');
    ex.shareIdentity();
    return ex.answer(500, 'internal error');
  } finally {
    clearTimeout(slow);
    ex.endIdentity(definite);
    ex.stage = 'done';
    ctx.leavePublish();
  }
}
